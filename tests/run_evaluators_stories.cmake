# Acceptance 2 of docs/evaluators.md: a stories260K search driven by the numpy
# float64 evaluator (scripts/evaluators/llama2c_numpy_evaluator.py, the
# independent reference forward) ends on the same factors, n_hat and number of
# evaluations as with the C++ double-forward evaluator (longrope evaluate), and
# the best perplexities agree to 1e-9. Tiny on purpose: 1 window of 768 tokens,
# 4 + 2 x 4 candidates. Prints SKIPPED (ctest: skipped) without numpy, the
# model or the text.
set(M ${SHARED}/models/stories260K)
set(TEXT ${SHARED}/data/tinystories/valid_head.txt)
if(NOT EXISTS ${M}/stories260K.bin OR NOT EXISTS ${M}/tok512.bin OR NOT EXISTS ${TEXT})
  message("SKIPPED: no stories260K or text under ${SHARED}")
  return()
endif()
set(PYEVAL ${SRC}/scripts/evaluators/llama2c_numpy_evaluator.py)
execute_process(COMMAND ${PYTHON} ${PYEVAL} --check RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message("SKIPPED: ${PYTHON} has no numpy")
  return()
endif()
file(MAKE_DIRECTORY ${OUT})
file(WRITE ${OUT}/config.json "{\"head_dim\": 8, \"rope_theta\": 10000.0, \"max_position_embeddings\": 512}")
set(MODEL_ARGS "--model ${M}/stories260K.bin --tokenizer ${M}/tok512.bin --text ${TEXT} --windows 1")
set(SEARCH search --config ${OUT}/config.json --context 768 --attention-factor 1 --population 4 --mutations 2
    --crossovers 2 --topk 2 --iterations 2 --seed 5 --evaluators 2)
foreach(kind cpp py)
  if(kind STREQUAL cpp)
    set(cmd "${CLI} evaluate ${MODEL_ARGS}")
  else()
    set(cmd "${PYTHON} ${PYEVAL} ${MODEL_ARGS} --text-bytes 40000")
  endif()
  execute_process(COMMAND ${CLI} ${SEARCH} --evaluator "${cmd}" --out ${OUT}/${kind}.json
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${kind} evaluator search failed (${rc}): ${err}")
  endif()
  file(READ ${OUT}/${kind}.json json_${kind})
  string(JSON factors_${kind} GET "${json_${kind}}" rescale_factors)
  string(JSON n_hat_${kind} GET "${json_${kind}}" n_hat)
  string(JSON evals_${kind} GET "${json_${kind}}" evaluations)
  string(JSON fitness_${kind} GET "${json_${kind}}" fitness)
  string(JSON fails_${kind} GET "${json_${kind}}" evaluator_failures error_fitness)
  message("${kind}: factors ${factors_${kind}} n_hat ${n_hat_${kind}} perplexity ${fitness_${kind}} "
          "evaluations ${evals_${kind}} error fitness ${fails_${kind}}")
endforeach()
string(REGEX REPLACE "[ \n]" "" factors_cpp "${factors_cpp}")
string(REGEX REPLACE "[ \n]" "" factors_py "${factors_py}")
if(NOT factors_cpp STREQUAL factors_py OR NOT n_hat_cpp EQUAL n_hat_py OR NOT evals_cpp EQUAL evals_py)
  message(FATAL_ERROR "the two evaluators led to different searches")
endif()
if(NOT fails_cpp EQUAL 0 OR NOT fails_py EQUAL 0)
  message(FATAL_ERROR "an evaluator failed on some candidates")
endif()
execute_process(COMMAND ${PYTHON} -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a-b)<=1e-9*abs(a) else 1)"
                ${fitness_cpp} ${fitness_py} RESULT_VARIABLE close)
if(NOT close EQUAL 0)
  message(FATAL_ERROR "best perplexities differ: ${fitness_cpp} vs ${fitness_py}")
endif()
message("same factors, n_hat and evaluations; perplexities agree to 1e-9")
