# The LongRoPE evolutionary search.
longrope_add_test(test_search_ops SOURCES test_search_ops.cpp)
