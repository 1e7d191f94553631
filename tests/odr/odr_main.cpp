// Both translation units must link into one program and compute the same thing.
#include <cstdio>

double odr_a();
double odr_b();

int main() {
  const double a = odr_a();
  const double b = odr_b();
  if (a != b) {
    std::printf("ODR test FAILED: %.17g != %.17g\n", a, b);
    return 1;
  }
  std::printf("ODR test passed: two translation units agree (%.17g)\n", a);
  return 0;
}
