# The toy transformer (llama2.c), perplexity, eval/generate/search CLI.
# test_model always runs (a tiny random checkpoint written by the test);
# test_model_stories needs ../shared/models/stories260K and skips cleanly without it.
if(TARGET longrope_toymodel)
  longrope_add_test(test_model SOURCES test_model.cpp LIBS longrope_toymodel)
  longrope_add_test(test_model_stories SOURCES test_model_stories.cpp LIBS longrope_toymodel nlohmann_json::nlohmann_json)
endif()
if(TARGET longrope_cli)
  longrope_add_test(test_model_cli SOURCES test_model_cli.cpp LIBS nlohmann_json::nlohmann_json)
  target_compile_definitions(test_model_cli PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_model_cli longrope_cli)
endif()

# The main demo's smoke run (--quick: tiny searches, ~15 s at -O1): its output
# must report every method and write the results and both pictures. Registered
# only where ../shared has the model and the text, which the demo needs, and
# not in the sanitize and scalar builds, where the same run takes 320 s and
# 150 s and checks nothing the model tests do not (they run there).
if(TARGET demo AND NOT LONGROPE_TESTS_SANITIZED AND NOT LONGROPE_FORCE_SCALAR)
  if(LONGROPE_TESTS_HAVE_STORIES)
    add_test(NAME example_demo_quick
             COMMAND ${CMAKE_COMMAND} -DDEMO=$<TARGET_FILE:demo> -DOUT=${CMAKE_CURRENT_BINARY_DIR}/demo-quick
                     -P ${CMAKE_CURRENT_SOURCE_DIR}/run_demo_quick.cmake)
    set_tests_properties(example_demo_quick PROPERTIES TIMEOUT 600)
  else()
    message(STATUS "longrope tests: example_demo_quick not registered (no stories260K or text under ${LONGROPE_SHARED_DIR_DEFAULT})")
  endif()
endif()
