// Translation unit A of the ODR test.
#define ODR_FUNCTION odr_a
#include "odr_body.hpp"
