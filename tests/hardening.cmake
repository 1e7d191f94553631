# Issue 9 (hardening): one regression test per defect class (library level), and
# the fuzz targets replaying their seed corpora (tests/fuzz/).
if(TARGET longrope_toymodel)
  longrope_add_test(test_hardening SOURCES test_hardening.cpp LIBS longrope_toymodel nlohmann_json::nlohmann_json)
  # Class 8 (durability) needs the system calls themselves: traced where strace exists.
  find_program(LONGROPE_STRACE strace)
  if(LONGROPE_STRACE)
    execute_process(COMMAND ${LONGROPE_STRACE} -qq -o /dev/null true RESULT_VARIABLE longrope_strace_rc OUTPUT_QUIET ERROR_QUIET)
  endif()
  if(LONGROPE_STRACE AND longrope_strace_rc EQUAL 0)  # strace present and allowed to trace (ptrace)
    add_test(NAME test_hardening_fsync
             COMMAND ${CMAKE_COMMAND} -DTEST=$<TARGET_FILE:test_hardening> -DSTRACE=${LONGROPE_STRACE}
                     -DLOG=${CMAKE_CURRENT_BINARY_DIR}/test_hardening_fsync.trace -P ${CMAKE_CURRENT_SOURCE_DIR}/check_fsync.cmake)
  endif()
endif()
add_subdirectory(fuzz)
