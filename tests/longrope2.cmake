# LongRoPE2: critical dimensions, the NTK-derived search space, the mscale stage,
# per-pair mscale in tables and rotation.
find_package(Threads REQUIRED)
longrope_add_test(test_longrope2 SOURCES test_longrope2.cpp LIBS nlohmann_json::nlohmann_json Threads::Threads)
