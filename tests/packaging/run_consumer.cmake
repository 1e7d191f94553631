# Driven by ctest (cmake -P). Builds a consumer project and runs it.
# Inputs: SOURCE_DIR, WORK_DIR, CONSUMER_DIR, MODE (find_package | add_subdirectory | pkg_config), GENERATOR;
# pkg_config also: CXX (the compiler), PKG_CONFIG (the pkg-config program).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGV} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGV}")
    message(FATAL_ERROR "packaging test (${MODE}) failed: ${cmd} -> ${rc}")
  endif()
endfunction()

if(MODE STREQUAL "find_package" OR MODE STREQUAL "pkg_config")
  # A fresh, minimal configure of longrope itself (nothing but install rules),
  # installed into a scratch prefix.
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/longrope-build -G ${GENERATOR}
      -DLONGROPE_BUILD_TESTS=OFF -DLONGROPE_BUILD_BENCHMARKS=OFF -DLONGROPE_BUILD_EXAMPLES=OFF
      -DLONGROPE_INSTALL=ON -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/longrope-build)
  foreach(f include/longrope/longrope.hpp include/longrope/kv_switch.hpp include/longrope/owned_table.hpp
            share/cmake/longrope/longropeConfig.cmake share/cmake/longrope/longropeConfigVersion.cmake
            share/cmake/longrope/longropeTargets.cmake share/cmake/longrope/longropeJsonTargets.cmake
            share/pkgconfig/longrope.pc share/pkgconfig/longrope-json.pc)
    if(NOT EXISTS ${WORK_DIR}/prefix/${f})
      message(FATAL_ERROR "install tree lacks ${f}")
    endif()
  endforeach()
endif()

if(MODE STREQUAL "pkg_config")
  # A non-CMake engine: flags from pkg-config only.
  set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/prefix/share/pkgconfig")
  foreach(pair "longrope;consumer" "longrope-json;json_consumer")
    list(GET pair 0 pkg)
    list(GET pair 1 prog)
    execute_process(COMMAND ${PKG_CONFIG} --cflags --libs ${pkg} OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "packaging test (pkg_config): pkg-config --cflags --libs ${pkg} failed (${rc})")
    endif()
    message(STATUS "pkg-config ${pkg}: ${flags}")
    separate_arguments(flags UNIX_COMMAND "${flags}")
    run(${CXX} -std=c++17 -O1 ${CONSUMER_DIR}/${prog}.cpp -o ${WORK_DIR}/${prog} ${flags})
    run(${WORK_DIR}/${prog})
  endforeach()
  return()
endif()

if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
else()
  run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
      -DLONGROPE_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release)
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run(${WORK_DIR}/consumer-build/consumer)
run(${WORK_DIR}/consumer-build/json_consumer)
