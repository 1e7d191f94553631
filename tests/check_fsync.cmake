# Issue 9, class 8: a checkpoint is durable. Runs test_hardening's "class 8"
# case under strace and requires, for every rename of a "*.tmp" file, an
# fsync before it (the file's data) and an fsync after it (the directory entry).
# Before the fix save_checkpoint renamed without any fsync, so this failed.
# -D TEST=<test_hardening> -D STRACE=<strace> -D LOG=<trace file>
# LeakSanitizer cannot run under ptrace: leaks are checked by the untraced test_hardening run.
execute_process(COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
                        ${STRACE} -f -qq -e trace=fsync,rename,renameat,renameat2 -o ${LOG} ${TEST} "class 8*"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "test_hardening under strace failed (${rc}):\n${out}\n${err}")
endif()
file(STRINGS ${LOG} lines)
set(state "idle")  # idle -> synced (fsync seen) -> renamed (rename of .tmp after an fsync) -> idle (fsync after)
set(renames 0)
set(durable 0)
foreach(line IN LISTS lines)
  if(line MATCHES "fsync\\(")
    if(state STREQUAL "renamed")
      math(EXPR durable "${durable} + 1")
      set(state "idle")
    else()
      set(state "synced")
    endif()
  elseif(line MATCHES "rename[a-z0-9]*\\(.*\\.tmp\"")
    math(EXPR renames "${renames} + 1")
    if(state STREQUAL "synced")
      set(state "renamed")
    else()
      set(state "idle")
    endif()
  endif()
endforeach()
if(renames EQUAL 0)
  message(FATAL_ERROR "no rename of a .tmp file traced: the test did not save a checkpoint?\n${out}")
endif()
if(NOT durable EQUAL renames)
  message(FATAL_ERROR "${renames} checkpoint rename(s), only ${durable} with fsync of the file before and of the directory after")
endif()
message(STATUS "${renames} checkpoint writes: each fsync(file), rename, fsync(directory)")
