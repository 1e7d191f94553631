longrope_add_test(test_search_strategy SOURCES test_search_strategy.cpp LIBS nlohmann_json::nlohmann_json Threads::Threads longrope_toymodel)
# The quality-versus-cost harness in its --quick form (plumbing: 2x, one seed,
# tiny budgets); not in sanitize/scalar builds (too slow there, same code as the model tests).
if(TARGET search_quality AND NOT LONGROPE_TESTS_SANITIZED AND NOT LONGROPE_FORCE_SCALAR AND
   LONGROPE_TESTS_HAVE_STORIES)
  add_test(NAME example_search_quality_quick
           COMMAND search_quality --quick --shared ${LONGROPE_SHARED_DIR_DEFAULT} --out ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(example_search_quality_quick PROPERTIES TIMEOUT 300
                       PASS_REGULAR_EXPRESSION "\\| surrogate \\| sampled \\|.*wrote")
endif()
