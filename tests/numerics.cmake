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

# The checked-in golden data must be what the reference generator writes
# (runs only where a python3 with mpmath and numpy is found, e.g. Debian's /usr/bin/python3).
find_program(LONGROPE_REFERENCE_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(LONGROPE_REFERENCE_PYTHON)
  execute_process(COMMAND ${LONGROPE_REFERENCE_PYTHON} -c "import mpmath, numpy"
                  RESULT_VARIABLE longrope_reference_python_rc OUTPUT_QUIET ERROR_QUIET)
  if(longrope_reference_python_rc EQUAL 0)
    add_test(NAME golden_data_fresh
             COMMAND ${LONGROPE_REFERENCE_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/reference/gen_golden.py --check)
  endif()
endif()
