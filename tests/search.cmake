# The LongRoPE evolutionary search.
longrope_add_test(test_search_ops SOURCES test_search_ops.cpp)
longrope_add_test(test_search_driver SOURCES test_search_driver.cpp LIBS nlohmann_json::nlohmann_json)
