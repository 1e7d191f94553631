# cmake -P script: `longrope gguf set` writes a GGUF, then @huggingface/gguf
# (npm registry, installed into WORK, never into the repository) reads it back.
# Prints "SKIPPED: <reason>" (the ctest SKIP_REGULAR_EXPRESSION) without node,
# npm or the package. Variables: NODE NPM CLI SRC WORK.
if(NOT NODE OR NOT NPM)
  message("SKIPPED: node or npm not found")
  return()
endif()
file(MAKE_DIRECTORY ${WORK})
if(NOT EXISTS ${WORK}/node_modules/@huggingface/gguf/package.json)
  execute_process(COMMAND ${NPM} install --no-audit --no-fund --prefix ${WORK} @huggingface/gguf@0.4.6
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 180)
  if(NOT rc EQUAL 0 OR NOT EXISTS ${WORK}/node_modules/@huggingface/gguf/package.json)
    message("SKIPPED: npm install @huggingface/gguf failed (${rc}): ${err}")
    return()
  endif()
endif()
set(seed ${SRC}/tests/fuzz/corpus/fuzz_gguf/phi3_longrope.gguf)
file(WRITE ${WORK}/long.json "{\"rescale_factors\": [1.5, 2.25, 3.125, 40.5], \"n_hat\": 0}")
file(WRITE ${WORK}/short.json "{\"rescale_factors\": [1.0, 1.0625, 1.125, 1.25], \"n_hat\": 0}")
file(WRITE ${WORK}/expect.json "{\"attn_factor\": 1.25, \"factors\": {\"rope_factors_long.weight\": [1.5, 2.25, 3.125, 40.5], \"rope_factors_short.weight\": [1.0, 1.0625, 1.125, 1.25]}}")
execute_process(COMMAND ${CLI} gguf set ${seed} --factors ${WORK}/long.json --short-factors ${WORK}/short.json
                        --attn-factor 1.25 --out ${WORK}/new.gguf
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "longrope gguf set failed: ${err}")
endif()
# The reader script sits beside node_modules so `import "@huggingface/gguf"` resolves there.
configure_file(${SRC}/tests/gguf_npm_read.mjs ${WORK}/gguf_npm_read.mjs COPYONLY)
execute_process(COMMAND ${NODE} ${WORK}/gguf_npm_read.mjs ${seed} ${WORK}/new.gguf ${WORK}/expect.json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "@huggingface/gguf rejected or misread the file")
endif()
