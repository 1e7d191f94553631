# The engine drop-in (issue 15, engine half): the short/long switch, the owning
# table type, the toy transformer's generate across the trained length.
longrope_add_test(test_kv_switch SOURCES test_kv_switch.cpp LIBS nlohmann_json::nlohmann_json)
if(TARGET longrope_toymodel)
  longrope_add_test(test_model_switch SOURCES test_model_switch.cpp LIBS longrope_toymodel)
endif()
