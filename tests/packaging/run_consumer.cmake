# Driven by ctest (cmake -P). Builds a consumer project and runs it.
# Inputs: SOURCE_DIR, WORK_DIR, CONSUMER_DIR, MODE (find_package | add_subdirectory), GENERATOR.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGV} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGV}")
    message(FATAL_ERROR "packaging test (${MODE}) failed: ${cmd} -> ${rc}")
  endif()
endfunction()

if(MODE STREQUAL "find_package")
  # A fresh, minimal configure of longrope itself (nothing but install rules),
  # installed into a scratch prefix.
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/longrope-build -G ${GENERATOR}
      -DLONGROPE_BUILD_TESTS=OFF -DLONGROPE_BUILD_BENCHMARKS=OFF -DLONGROPE_BUILD_EXAMPLES=OFF
      -DLONGROPE_INSTALL=ON -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/longrope-build)
  foreach(f include/longrope/longrope.hpp share/cmake/longrope/longropeConfig.cmake
            share/cmake/longrope/longropeConfigVersion.cmake share/cmake/longrope/longropeTargets.cmake)
    if(NOT EXISTS ${WORK_DIR}/prefix/${f})
      message(FATAL_ERROR "install tree lacks ${f}")
    endif()
  endforeach()
  run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
else()
  run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
      -DLONGROPE_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release)
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run(${WORK_DIR}/consumer-build/consumer)
