// doctest's main for every native/test executable. Exceptions are off (as in the addon), so the
// build defines DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS; the tests use CHECK plus an early
// return (their ENSURE macros) where a failure must stop a test case.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
