# The engine drop-in (issue 15, engine half): the short/long switch, the owning
# table type, the toy transformer's generate across the trained length.
longrope_add_test(test_kv_switch SOURCES test_kv_switch.cpp LIBS nlohmann_json::nlohmann_json)
if(TARGET longrope_toymodel)
  longrope_add_test(test_model_switch SOURCES test_model_switch.cpp LIBS longrope_toymodel)
endif()
if(TARGET longrope_cli AND UNIX)
  longrope_add_test(test_cli_engine SOURCES test_cli_engine.cpp LIBS nlohmann_json::nlohmann_json)
  target_compile_definitions(test_cli_engine PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_cli_engine longrope_cli)
endif()
longrope_add_test(test_engine_api SOURCES test_engine_api.cpp)
