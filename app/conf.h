/* The config file (--conf FILE): every long option as `name = value`, one per line, read with
 * inih and applied through the command line's own per-option code (options_apply_setting), so a
 * value means the same in both places. */
#ifndef VPN2SOCKS_APP_CONF_H
#define VPN2SOCKS_APP_CONF_H

#include <stddef.h>

struct options;

/* The whole configuration: argv, and when argv names --conf FILE, the file first and argv over it
 * (options_apply_args says how the command line wins); then options_check(). 0, or a negative
 * errno with one line in err: "FILE:LINE: message" for a line of the file. */
int conf_options(struct options *o, int argc, char **argv, char *err, size_t errcap);
/* Reads the file at path onto o (which options_init made). Refused when it is not a regular file,
 * when a user other than root and the one running vpn2socks owns it, or when its group or other
 * users may write it: whoever writes it decides where the traffic goes and who may use the
 * listeners. 0, or -EINVAL (a bad line, "PATH:LINE: message"), -EPERM (the permissions) or the
 * errno of reading it ("PATH: message"). */
int conf_load(struct options *o, const char *path, char *err, size_t errcap);
/* The lines in text (len bytes), as conf_load() applies them; name is what messages call the text
 * and dir the directory that relative paths are taken from (NULL: as given). 0 or -EINVAL. */
int conf_parse_text(struct options *o, const char *text, size_t len, const char *name, const char *dir, char *err,
                    size_t errcap);

#endif
