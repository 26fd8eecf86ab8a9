/* outfile.c - checks on the -o of apply, convert and freeze before anything
 * is written: --no-clobber, and a warning when the extension belongs to
 * another format than the one written. */
#include "cli.h"

#include <sys/stat.h>

bool refuse_existing(char *const *paths, const char *extra)
{
    struct stat st;
    for (size_t i = 0; paths && paths[i]; i++)
        if (lstat(paths[i], &st) == 0) {
            errorf("%s exists and --no-clobber is given: nothing written", paths[i]);
            return true;
        }
    if (extra && lstat(extra, &st) == 0) {
        errorf("%s exists and --no-clobber is given: nothing written", extra);
        return true;
    }
    return false;
}

void warn_extension(const char *out, const char *format)
{
    const char *expected = NULL;
    if (!graft_format_fits_path(format, out, &expected))
        warnf("%s: the extension is that of %s files, but a %s file is written", out,
              expected ? expected : "other", format);
}
