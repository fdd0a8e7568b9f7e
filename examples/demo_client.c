/* nucleus-demo-client: sends a few messages to a receiver through the C API
 * and prints each answer.
 *   nucleus-demo-client [RECEIVER [COUNT]]   (default: echo 5) */
#include <nucleus/nucleus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  const char *receiver = argc > 1 ? argv[1] : "echo";
  int count = argc > 2 ? atoi(argv[2]) : 5;
  nucleus_t *n = NULL;
  int rc = nucleus_attach("demo-client", &n);
  if (rc < 0) {
    fprintf(stderr, "demo-client: attach: %s\n", nucleus_strerror(rc));
    return 1;
  }
  for (int i = 0; i < count; ++i) {
    nucleus_message_t m;
    memset(&m, 0, sizeof(m));
    m.word[0] = (uint64_t)i;
    m.word[1] = (uint64_t)i * (uint64_t)i;
    snprintf((char *)&m.word[2], 6 * sizeof(uint64_t), "hello #%d", i);
    nucleus_buffer_t b = 0;
    rc = nucleus_send_message(n, receiver, &m, &b);
    if (rc < 0) {
      fprintf(stderr, "demo-client: send_message: %s\n", nucleus_strerror(rc));
      break;
    }
    int result = 0;
    nucleus_message_t a;
    rc = nucleus_wait_answer(n, b, 5000000000LL, &result, &a);
    if (rc < 0) {
      fprintf(stderr, "demo-client: wait_answer: %s\n", nucleus_strerror(rc));
      break;
    }
    printf("demo-client: sent \"%s\" (%llu, %llu) to %s; answer %s: \"%s\" (%llu, %llu)\n",
           (char *)&m.word[2], (unsigned long long)m.word[0], (unsigned long long)m.word[1],
           receiver, nucleus_strerror(result), (char *)&a.word[2], (unsigned long long)a.word[0],
           (unsigned long long)a.word[1]);
  }
  nucleus_detach(n);
  return rc < 0 ? 1 : 0;
}
