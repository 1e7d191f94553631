# Issue 9 (hardening): one regression test per defect class (library level), and
# the fuzz targets replaying their seed corpora (tests/fuzz/).
if(TARGET longrope_toymodel)
  longrope_add_test(test_hardening SOURCES test_hardening.cpp LIBS longrope_toymodel nlohmann_json::nlohmann_json)
endif()
add_subdirectory(fuzz)
