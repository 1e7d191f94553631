longrope_add_test(test_search_strategy SOURCES test_search_strategy.cpp LIBS nlohmann_json::nlohmann_json Threads::Threads longrope_toymodel)
# The quality-versus-cost harness in its --quick form (plumbing: 2x, one seed,
# tiny budgets); not in sanitize/scalar builds (too slow there, same code as the model tests).
string(FIND "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_DEBUG} ${CMAKE_CXX_FLAGS_RELEASE}" "-fsanitize" longrope_sq_sanitized)
if(TARGET search_quality AND longrope_sq_sanitized EQUAL -1 AND NOT LONGROPE_FORCE_SCALAR AND
   EXISTS "${LONGROPE_SHARED_DIR_DEFAULT}/models/stories260K/stories260K.bin")
  add_test(NAME example_search_quality_quick
           COMMAND search_quality --quick --shared ${LONGROPE_SHARED_DIR_DEFAULT} --out ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(example_search_quality_quick PROPERTIES TIMEOUT 300
                       PASS_REGULAR_EXPRESSION "\\| gaussian \\|.*wrote")
endif()
