// Catch2 v2 / v3 compatibility for longrope's tests.
#pragma once
#if defined(LONGROPE_CATCH2_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
