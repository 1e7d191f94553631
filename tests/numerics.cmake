# Core numerics: golden tables, JSON config I/O, re-rotation, the CLI freqs/table subcommands.
longrope_add_test(test_golden SOURCES test_golden.cpp LIBS nlohmann_json::nlohmann_json)
longrope_add_test(test_properties SOURCES test_properties.cpp LIBS nlohmann_json::nlohmann_json)
longrope_add_test(test_rerotate SOURCES test_rerotate.cpp LIBS nlohmann_json::nlohmann_json)
longrope_add_test(test_json SOURCES test_json.cpp LIBS nlohmann_json::nlohmann_json)
# The CLI (acceptance points 1-3 through the built binary); needs the examples/tools build.
if(TARGET longrope_cli AND UNIX)
  longrope_add_test(test_cli SOURCES test_cli.cpp LIBS nlohmann_json::nlohmann_json)
  target_compile_definitions(test_cli PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_cli longrope_cli)
endif()
