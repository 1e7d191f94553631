# Rotation kernels: every vector path against the scalar reference.
longrope_add_test(test_rotate SOURCES test_rotate.cpp test_table_stream.cpp)

# test_rotate runs every [simd] case once per ISA the machine has (set_isa),
# so AVX2 and AVX-512 are both checked on an AVX-512 machine from one binary.

# The threads example must produce the single-thread result from two threads.
if(TARGET threads_example)
  add_test(NAME example_threads COMMAND threads_example 1024)
  set_tests_properties(example_threads PROPERTIES PASS_REGULAR_EXPRESSION "identical to the single-thread run: yes")
endif()

# A consumer built with default flags (no -march: longrope_project_options is
# not linked) gets the vector path of its CPU through the runtime dispatch.
add_executable(test_isa_nomarch test_isa_nomarch.cpp)
target_link_libraries(test_isa_nomarch PRIVATE longrope::longrope)
if(LONGROPE_FORCE_SCALAR)
  target_compile_definitions(test_isa_nomarch PRIVATE LONGROPE_FORCE_SCALAR)
endif()
add_test(NAME test_isa_nomarch COMMAND test_isa_nomarch)

# test_rotate once more with LONGROPE_ISA=scalar: the environment override
# must put every public call on the reference path (the [isa] case checks it).
add_test(NAME test_rotate_env_scalar COMMAND test_rotate "[isa]")
set_tests_properties(test_rotate_env_scalar PROPERTIES ENVIRONMENT "LONGROPE_ISA=scalar")

# 16-bit (half, bfloat16) tables: fill and rotation, every ISA.
longrope_add_test(test_tables16 SOURCES test_tables16.cpp)
