# Rotation kernels: every vector path against the scalar reference.
longrope_add_test(test_rotate SOURCES test_rotate.cpp)

# The same tests with AVX-512 switched off, so the AVX2 kernels are checked on
# an AVX-512 machine too (GCC/Clang keep an explicit -mno-* over -march=native).
if(NOT LONGROPE_FORCE_SCALAR AND LONGROPE_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  longrope_add_test(test_rotate_avx2 SOURCES test_rotate.cpp)
  target_compile_options(test_rotate_avx2 PRIVATE -mno-avx512f)
endif()

# The threads example must produce the single-thread result from two threads.
if(TARGET threads_example)
  add_test(NAME example_threads COMMAND threads_example 1024)
  set_tests_properties(example_threads PROPERTIES PASS_REGULAR_EXPRESSION "identical to the single-thread run: yes")
endif()
