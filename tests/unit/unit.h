/* What every check suite's main() does. */
#ifndef LOOPSAN_UNIT_H
#define LOOPSAN_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Run every test of S (each in a child process, check's default) and turn
 * the outcome into the exit status automake's test driver reads. */
static inline int loopsan_unit_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
