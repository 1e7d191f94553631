# Interop (issue 14): export to transformers 4.x / 5.x and vLLM, the GGUF
# reader/writer, the rope types engines ship beyond transformers 4.x.
longrope_add_test(test_rope_types SOURCES test_rope_types.cpp LIBS nlohmann_json::nlohmann_json)
longrope_add_test(test_gguf SOURCES test_gguf.cpp LIBS nlohmann_json::nlohmann_json)
if(TARGET longrope_cli AND UNIX)
  longrope_add_test(test_interop_export SOURCES test_interop_export.cpp LIBS nlohmann_json::nlohmann_json)
  target_compile_definitions(test_interop_export PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_interop_export longrope_cli)
  target_compile_definitions(test_gguf PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_gguf longrope_cli)
endif()
