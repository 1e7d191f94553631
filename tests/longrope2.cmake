# LongRoPE2: critical dimensions, the NTK-derived search space, the mscale stage,
# per-pair mscale in tables and rotation.
find_package(Threads REQUIRED)
longrope_add_test(test_longrope2 SOURCES test_longrope2.cpp LIBS nlohmann_json::nlohmann_json Threads::Threads)
if(TARGET longrope_cli)
  longrope_add_test(test_longrope2_cli SOURCES test_longrope2_cli.cpp LIBS longrope_toymodel nlohmann_json::nlohmann_json)
  target_compile_definitions(test_longrope2_cli PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_longrope2_cli longrope_cli)
endif()
