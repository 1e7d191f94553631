# Flags for longrope's *own* targets (tests, benchmarks, examples, CLI). Nothing
# here leaks into the INTERFACE target that consumers link.
#
#   longrope_project_target(<target>)  warnings (+ -Werror in CI), SIMD switches.

add_library(longrope_project_options INTERFACE)
target_compile_options(longrope_project_options INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-Wall -Wextra -Wpedantic -Wconversion -Wshadow>)
if(LONGROPE_WARNINGS_AS_ERRORS)
  target_compile_options(longrope_project_options INTERFACE
    $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-Werror>)
endif()
if(LONGROPE_FORCE_SCALAR)
  # LONGROPE_FORCE_SCALAR selects the scalar reference in every longrope kernel;
  # EIGEN_DONT_VECTORIZE does the same for Eigen's own products in the examples.
  target_compile_definitions(longrope_project_options INTERFACE LONGROPE_FORCE_SCALAR EIGEN_DONT_VECTORIZE)
elseif(LONGROPE_NATIVE)
  target_compile_options(longrope_project_options INTERFACE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-march=native>)
endif()

function(longrope_project_target target)
  target_link_libraries(${target} PRIVATE longrope::longrope longrope_project_options)
endfunction()
