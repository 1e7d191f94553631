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
