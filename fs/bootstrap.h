/*
 * fs/bootstrap.h: bring the VM's ".git" into a fresh local layer, once.
 *
 * A VM directory that is a git clone has its repository on the VM. The mount
 * keeps ".git" in the local layer only (the union shows nothing of the VM
 * under a ".git" the layer has, and the flush policy reads the repository
 * from the layer), so before the mount serves, the VM's ".git" at the mount
 * root is copied into the layer when the layer has none:
 *
 *   on the VM:   tar of ".git" into a temporary file (mktemp in $TMPDIR)
 *   over SFTP:   that file streamed into <layer>/.wakefs/tmp/git-boot.XXXXXX/
 *   locally:     extracted there, synced, then renamed to <layer>/.git
 *
 * When the VM cannot make the archive (no shell, no tar, no room in its
 * temporary directory), the copy is made file by file over SFTP into the same
 * temporary place instead (slower: a round trip per file). The environment
 * variable WAKEFS_TEST_BOOTSTRAP_SFTP (a test hook) forces that way.
 *
 * A crash before the rename leaves only the temporary directory (removed by
 * the next mount's bootstrap), never half a ".git". From then on the layer's
 * ".git" is the repository: later changes of the VM's ".git" are not seen,
 * and the VM's ".git" is never written. An existing ".git" in the layer is
 * never replaced. A ".git" file on the VM (a worktree or submodule whose
 * repository lives elsewhere) is not followed: a note says so.
 */
#ifndef WAKEFS_BOOTSTRAP_H
#define WAKEFS_BOOTSTRAP_H

struct remote;

struct layer;

/*
 * Copy the VM's @remote_dir/.git ("" or NULL: the login directory) into
 * @layer_dir/.git unless the layer has a ".git" already or the VM has none.
 * @source ("host:dir") names the mount in messages. Prints a line with the
 * size before and one after on stderr. Returns 1 when it copied, 0 when there
 * was nothing to do, or -errno after saying on stderr what failed.
 */
int bootstrap_git(struct remote *r, const char *remote_dir, const char *layer_dir,
		  const char *source);

/*
 * After a copy, once the layer has learnt the VM's tree: the copied index
 * holds the VM's stat data (inode numbers, change times, nanoseconds), which
 * the mount cannot show, so the first git status would read every tracked
 * file over the link to compare it. For each entry whose size and mtime are
 * those the VM has (what git on the VM would call unchanged), and which is
 * not racily clean, the stat data becomes the mount's (via libgit2); the
 * index is written only if git did not change it meanwhile. Returns 0 or
 * -errno (after a note on stderr; git then just reads the files once).
 */
int bootstrap_restat(struct layer *l, const char *layer_dir);

#endif
