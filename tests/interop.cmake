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

# An independent reader from the npm registry reads back what `gguf set` wrote
# (skipped without node/npm or network; installs into the build tree only).
if(TARGET longrope_cli)
  find_program(LONGROPE_NODE node)
  find_program(LONGROPE_NPM npm)
  add_test(NAME gguf_npm_reader
           COMMAND ${CMAKE_COMMAND} -DNODE=${LONGROPE_NODE} -DNPM=${LONGROPE_NPM} -DCLI=$<TARGET_FILE:longrope_cli>
                   -DSRC=${PROJECT_SOURCE_DIR} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/npm_gguf
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/gguf_npm_check.cmake)
  set_tests_properties(gguf_npm_reader PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED:"
                       PASS_REGULAR_EXPRESSION "NPM_GGUF_OK" TIMEOUT 240)
endif()
