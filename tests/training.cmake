# The trainer (llama2c/train.hpp): gradients against finite differences, the
# float trainer against the double one, checkpoint writing, exact resume.
# Small random models made by the test; the stories260K byte check skips
# cleanly without ../shared.
if(TARGET longrope_toymodel)
  # test_train_sources.cpp: the passkey mix and the from-scratch init (#11).
  longrope_add_test(test_train SOURCES test_train.cpp test_train_sources.cpp LIBS longrope_toymodel)
  # One translation unit: both files instantiate the float and double model,
  # backward pass and trainer, which dominate their compile time. Compiled
  # together they take 86 s of CPU instead of 71 + 77 s (dev flags, -g1).
  set_target_properties(test_train PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 0)
endif()
if(TARGET longrope_cli)
  longrope_add_test(test_finetune_cli SOURCES test_finetune_cli.cpp LIBS nlohmann_json::nlohmann_json)
  target_compile_definitions(test_finetune_cli PRIVATE LONGROPE_CLI_PATH="$<TARGET_FILE:longrope_cli>")
  add_dependencies(test_finetune_cli longrope_cli)
endif()
