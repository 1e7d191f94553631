# The LongRoPE evolutionary search.
# search.hpp runs evaluations on std::threads.
find_package(Threads REQUIRED)
longrope_add_test(test_search_ops SOURCES test_search_ops.cpp LIBS Threads::Threads CXX20)
longrope_add_test(test_search_driver SOURCES test_search_driver.cpp LIBS nlohmann_json::nlohmann_json Threads::Threads)

# docs/search.md's complete example, compiled and run so the page cannot drift
# from the API: the single ```cpp block is extracted at configure time (code
# fragments in the page are marked ```c++ and are not compiled).
set(LONGROPE_SEARCH_DOC ${PROJECT_SOURCE_DIR}/docs/search.md)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${LONGROPE_SEARCH_DOC})
file(READ ${LONGROPE_SEARCH_DOC} _search_doc)
# string(FIND)/SUBSTRING rather than a regex match list: the code holds ';'.
set(_fence "```cpp\n")
string(FIND "${_search_doc}" "${_fence}" _begin)
string(FIND "${_search_doc}" "${_fence}" _last REVERSE)
if(_begin EQUAL -1 OR NOT _begin EQUAL _last)
  message(FATAL_ERROR "docs/search.md must hold exactly one ```cpp block (the complete example)")
endif()
math(EXPR _begin "${_begin} + 7")
string(SUBSTRING "${_search_doc}" ${_begin} -1 _search_doc_code)
string(FIND "${_search_doc_code}" "```" _end)
if(_end EQUAL -1)
  message(FATAL_ERROR "docs/search.md: the ```cpp block is not closed")
endif()
string(SUBSTRING "${_search_doc_code}" 0 ${_end} _search_doc_code)
file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/search_doc_example.cpp
     CONTENT "// Extracted from docs/search.md at configure time: edit the page, not this file.\n${_search_doc_code}"
     @ONLY)
add_executable(test_search_doc_example ${CMAKE_CURRENT_BINARY_DIR}/search_doc_example.cpp)
longrope_project_target(test_search_doc_example)
target_link_libraries(test_search_doc_example PRIVATE nlohmann_json::nlohmann_json Threads::Threads)
add_test(NAME test_search_doc_example COMMAND test_search_doc_example
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_search_doc_example PROPERTIES PASS_REGULAR_EXPRESSION "rope_scaling: \\{.*\"type\":\"longrope\"")

# The ask/tell coordinator example, driven through its files end to end.
if(TARGET search_ask_tell)
  add_test(NAME example_search_ask_tell COMMAND search_ask_tell demo example_search_state.json
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(example_search_ask_tell PROPERTIES PASS_REGULAR_EXPRESSION "in-process run: identical")
endif()
