# The trainer (llama2c/train.hpp): gradients against finite differences, the
# float trainer against the double one, checkpoint writing, exact resume.
# Small random models made by the test; the stories260K byte check skips
# cleanly without ../shared.
if(TARGET longrope_toymodel)
  longrope_add_test(test_train SOURCES test_train.cpp LIBS longrope_toymodel)
endif()
