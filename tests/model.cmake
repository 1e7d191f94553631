# The toy transformer (llama2.c), perplexity, eval/generate/search CLI.
