# External evaluators (docs/evaluators.md): the protocol, the coordinator's
# transports through the CLI, MPI where found, the numpy evaluator on stories260K.
longrope_add_test(test_evaluator_protocol SOURCES test_evaluator_protocol.cpp LIBS nlohmann_json::nlohmann_json)

# The fuzz target's seed corpus replayed through it (no libFuzzer needed; the
# fuzzing build itself is tests/fuzz/CMakeLists.txt's business).
add_executable(test_fuzz_protocol_corpus fuzz/fuzz_protocol.cpp support/fuzz_replay_main.cpp)
longrope_project_target(test_fuzz_protocol_corpus)
target_link_libraries(test_fuzz_protocol_corpus PRIVATE nlohmann_json::nlohmann_json)
add_test(NAME test_fuzz_protocol_corpus COMMAND test_fuzz_protocol_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/protocol)

if(TARGET longrope_cli)
  longrope_add_test(test_evaluators SOURCES test_evaluators.cpp LIBS nlohmann_json::nlohmann_json)
  target_include_directories(test_evaluators PRIVATE ${PROJECT_SOURCE_DIR}/tools/longrope)
  target_compile_definitions(test_evaluators PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_evaluators longrope_cli)
  if(LONGROPE_WITH_MPI AND MPIEXEC_EXECUTABLE)
    target_compile_definitions(test_evaluators PRIVATE LONGROPE_MPIEXEC="${MPIEXEC_EXECUTABLE}")
    add_test(NAME test_evaluators_mpi COMMAND test_evaluators "[mpi]")
    # Open MPI's own allocations are not ours to report.
    set_tests_properties(test_evaluators_mpi PROPERTIES ENVIRONMENT "LONGROPE_TEST_MPI=1;ASAN_OPTIONS=detect_leaks=0" TIMEOUT 120)
  endif()
  # Acceptance 2: the numpy float64 evaluator and the C++ double evaluator find
  # the same stories260K factors (skips without numpy, the model or the text).
  find_program(LONGROPE_SYSTEM_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(LONGROPE_SYSTEM_PYTHON)
    add_test(NAME test_evaluators_stories
             COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:longrope_cli> -DPYTHON=${LONGROPE_SYSTEM_PYTHON}
                     -DSRC=${PROJECT_SOURCE_DIR} -DSHARED=${LONGROPE_SHARED_DIR_DEFAULT}
                     -DOUT=${CMAKE_CURRENT_BINARY_DIR}/evaluators-stories
                     -P ${CMAKE_CURRENT_SOURCE_DIR}/run_evaluators_stories.cmake)
    set_tests_properties(test_evaluators_stories PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED:" TIMEOUT 300)
  endif()
endif()
