// Translation unit B of the ODR test.
#define ODR_FUNCTION odr_b
#include "odr_body.hpp"
