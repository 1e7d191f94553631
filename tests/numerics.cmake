# Core numerics: golden tables, JSON config I/O, re-rotation, the CLI freqs/table subcommands.
longrope_add_test(test_golden SOURCES test_golden.cpp LIBS nlohmann_json::nlohmann_json)
longrope_add_test(test_properties SOURCES test_properties.cpp LIBS nlohmann_json::nlohmann_json)
longrope_add_test(test_rerotate SOURCES test_rerotate.cpp LIBS nlohmann_json::nlohmann_json)
longrope_add_test(test_json SOURCES test_json.cpp LIBS nlohmann_json::nlohmann_json)
