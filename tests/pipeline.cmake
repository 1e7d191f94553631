# The progressive pipeline, `longrope extend` (llama2c/pipeline.hpp): bad
# input, and a tiny-budget run stopped after a stage and resumed against an
# uninterrupted one (stories260K from ../shared; skips cleanly without it).
if(TARGET longrope_cli)
  longrope_add_test(test_extend_cli SOURCES test_extend_cli.cpp LIBS nlohmann_json::nlohmann_json)
  target_compile_definitions(test_extend_cli PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_extend_cli longrope_cli)
  # Under ASan the stories260K case (two whole pipelines) takes ~2 minutes: it
  # runs in dev and in dev-isa-scalar; sanitize runs the bad-input cases.
  if(LONGROPE_TESTS_SANITIZED)
    add_test(NAME test_extend_cli_sanitized COMMAND test_extend_cli "~[stories]")
    set_tests_properties(test_extend_cli PROPERTIES DISABLED ON)
  endif()
endif()

# The progressive demo's smoke run (--quick: tiny budgets and contexts): it must
# write the results page with every row and the three pictures. dev only, like
# example_demo_quick (tests/model.cmake): sanitize and scalar run test_extend_cli.
if(TARGET progressive AND NOT LONGROPE_TESTS_SANITIZED AND NOT LONGROPE_FORCE_SCALAR)
  if(LONGROPE_TESTS_HAVE_STORIES)
    add_test(NAME example_progressive_quick
             COMMAND ${CMAKE_COMMAND} -DDEMO=$<TARGET_FILE:progressive> -DOUT=${CMAKE_CURRENT_BINARY_DIR}/progressive-quick
                     -P ${CMAKE_CURRENT_SOURCE_DIR}/run_progressive_quick.cmake)
    set_tests_properties(example_progressive_quick PROPERTIES TIMEOUT 300)
  endif()
endif()
