/* Built against the installed package with pkg-config only
 * (tests/packaging/package_test.sh): attaches, sends a message to the null
 * device and checks its answer. */
#include <nucleus/nucleus.h>
#include <stdio.h>

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "hello-pc";
  nucleus_t *n = NULL;
  int rc = nucleus_attach(name, &n);
  if (rc < 0) {
    fprintf(stderr, "%s: attach: %s\n", name, nucleus_strerror(rc));
    return 1;
  }
  nucleus_message_t m = {{42}};
  nucleus_buffer_t b = 0;
  rc = nucleus_send_message(n, "null", &m, &b);
  int result = 0;
  nucleus_message_t answer;
  if (rc == 0) rc = nucleus_wait_answer(n, b, 5000000000LL, &result, &answer);
  nucleus_detach(n);
  if (rc < 0 || result != NUCLEUS_RESULT_NORMAL) {
    fprintf(stderr, "%s: rc %d result %d\n", name, rc, result);
    return 1;
  }
  printf("%s: answer from null: result %d\n", name, result);
  return 0;
}
