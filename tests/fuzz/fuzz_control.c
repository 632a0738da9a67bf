/* libFuzzer harness: arbitrary bytes as one control-socket line, fed to the
 * line parser tr__control_parse (host/src/control.h). The fuzz build only
 * compiles this when host/src/control.h exists. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the parser gets a line without its newline, not NUL-terminated: copy it
   * to a buffer of exactly that size so any read past the end is caught */
  char *line = malloc(size ? size : 1);
  if (!line) return 0;
  memcpy(line, data, size);
  tr_ctl_req req;
  memset(&req, 0, sizeof req);
  int rc = tr__control_parse(line, size, &req);
  if (rc == 0) {
    if (req.verb < TR_CTL_LINE || req.verb > TR_CTL_QUIT) abort();
    if (req.arg_len && (!req.arg || req.arg < line || req.arg_len > size ||
                        req.arg + req.arg_len > line + size))
      abort(); /* the argument must lie inside the line */
  } else if (!memchr(req.err, 0, sizeof req.err)) {
    abort(); /* the reason must be a string */
  }
  free(line);
  return 0;
}
