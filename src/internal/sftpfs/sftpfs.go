// Package sftpfs serves the local file system over SFTP the way OpenSSH's sftp-server does, as
// request handlers for github.com/pkg/sftp's RequestServer (which speaks the protocol):
//
//   - symlink targets are stored exactly as the client sent them (relative stays relative);
//   - mkdir and file creation use the requested permissions (0777 / 0666 when none), subject
//     to the process umask; setstat/fsetstat apply size, permissions (with the set-id and
//     sticky bits), times and ownership;
//   - directory listings start with "." and "..";
//   - remove and rmdir are unlink(2) and rmdir(2): neither deletes the other's kind.
//
// pkg/sftp's own Server resolves symlink targets against its working directory, creates every
// directory 0755 and lists no "." or "..", which is why the sshd uses these handlers instead.
// The request server loses the attributes of OPEN and MKDIR requests; attrTap recovers them.
package sftpfs

import (
	"io"
	"os"
	"os/user"
	"path"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
)

// Default modes when the client sends no permissions, as OpenSSH's sftp-server (before umask).
const (
	defaultDirMode  = 0o777
	defaultFileMode = 0o666
)

// NewServer returns an SFTP server on rwc with relative paths resolved against workDir.
func NewServer(rwc io.ReadWriteCloser, workDir string) *sftp.RequestServer {
	workDir = resolve("/", workDir)
	tap := &attrTap{r: rwc, workDir: workDir}
	h := &handlers{tap: tap, names: map[string]string{}}
	in := struct {
		io.Reader
		io.Writer
		io.Closer
	}{tap, rwc, rwc}
	return sftp.NewRequestServer(in, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h},
		sftp.WithStartDirectory(workDir))
}

type handlers struct {
	tap   *attrTap
	mu    sync.Mutex
	names map[string]string // "u<uid>"/"g<gid>" -> name, for long listings
}

// openFlags maps SFTP open flags to open(2)'s. SSH_FXF_APPEND is left out: every write carries
// its offset, and Go refuses WriteAt on an O_APPEND file.
func openFlags(f sftp.FileOpenFlags) int {
	var flags int
	switch {
	case f.Read && f.Write:
		flags = os.O_RDWR
	case f.Write:
		flags = os.O_WRONLY
	default:
		flags = os.O_RDONLY
	}
	if f.Creat {
		flags |= os.O_CREATE
	}
	if f.Trunc {
		flags |= os.O_TRUNC
	}
	if f.Excl {
		flags |= os.O_EXCL
	}
	return flags
}

// createMode is the mode an OPEN asks a new file to have (0666 when it names none).
func (h *handlers) createMode(r *sftp.Request) uint32 {
	if m, ok := h.tap.openMode(r.Flags, r.Attrs); ok {
		return m
	}
	return defaultFileMode
}

// mkdirMode is the mode a MKDIR asks the directory to have (0777 when it names none).
func (h *handlers) mkdirMode(r *sftp.Request) uint32 {
	if m, ok := h.tap.mkdirMode(r.Filepath); ok {
		return m
	}
	return defaultDirMode
}

func (h *handlers) open(r *sftp.Request) (*os.File, error) {
	f := r.Pflags()
	if !f.Read && !f.Write {
		return nil, &os.PathError{Op: "open", Path: r.Filepath, Err: syscall.EINVAL}
	}
	// The raw open(2) so the mode bits reach the kernel as sent (umask applied there).
	fd, err := syscall.Open(r.Filepath, openFlags(f)|syscall.O_CLOEXEC, h.createMode(r))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: r.Filepath, Err: err}
	}
	return os.NewFile(uintptr(fd), r.Filepath), nil
}

// Fileread opens a file for reading.
func (h *handlers) Fileread(r *sftp.Request) (io.ReaderAt, error) { return h.open(r) }

// Filewrite opens (and maybe creates) a file for writing.
func (h *handlers) Filewrite(r *sftp.Request) (io.WriterAt, error) { return h.open(r) }

// OpenFile opens a file for reading and writing.
func (h *handlers) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) { return h.open(r) }

// Filecmd runs setstat, rename, mkdir, rmdir, remove, symlink and link requests.
func (h *handlers) Filecmd(r *sftp.Request) error {
	p := r.Filepath
	pathErr := func(op string, err error) error {
		if err == nil {
			return nil
		}
		return &os.PathError{Op: op, Path: p, Err: err}
	}
	switch r.Method {
	case "Setstat":
		return setstat(p, r)
	case "Rename", "PosixRename":
		return os.Rename(p, r.Target)
	case "Mkdir":
		return pathErr("mkdir", syscall.Mkdir(p, h.mkdirMode(r)))
	case "Rmdir":
		return pathErr("rmdir", syscall.Rmdir(p))
	case "Remove":
		return pathErr("unlink", syscall.Unlink(p))
	case "Symlink":
		// Filepath is the link's target exactly as sent, Target the new link's path.
		return os.Symlink(p, r.Target)
	case "Link":
		return os.Link(p, r.Target)
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename serves posix-rename@openssh.com: rename(2), replacing an existing target.
func (h *handlers) PosixRename(r *sftp.Request) error { return os.Rename(r.Filepath, r.Target) }

// StatVFS serves statvfs@openssh.com.
func (h *handlers) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(r.Filepath, &st); err != nil {
		return nil, &os.PathError{Op: "statfs", Path: r.Filepath, Err: err}
	}
	return &sftp.StatVFS{
		Bsize: uint64(st.Bsize), Frsize: uint64(st.Frsize), Blocks: st.Blocks, Bfree: st.Bfree,
		Bavail: st.Bavail, Files: st.Files, Ffree: st.Ffree, Favail: st.Ffree,
		Fsid: uint64(uint32(st.Fsid.X__val[0])) | uint64(uint32(st.Fsid.X__val[1]))<<32,
		Flag: uint64(st.Flags), Namemax: uint64(st.Namelen),
	}, nil
}

// setstat applies the attributes a (f)setstat request carries, in OpenSSH's order: size,
// permissions, times, ownership.
func setstat(p string, r *sftp.Request) error {
	flags, a := r.AttrFlags(), r.Attributes()
	if flags.Size {
		if err := os.Truncate(p, int64(a.Size)); err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := syscall.Chmod(p, a.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	if flags.Acmodtime {
		if err := os.Chtimes(p, a.AccessTime(), a.ModTime()); err != nil {
			return err
		}
	}
	if flags.UidGid {
		if err := os.Chown(p, int(a.UID), int(a.GID)); err != nil {
			return err
		}
	}
	return nil
}

// Filelist serves stat (following symlinks) and directory listings.
func (h *handlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "Stat":
		fi, err := os.Stat(r.Filepath)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	case "List":
		return list(r.Filepath)
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat serves lstat (a symlink itself).
func (h *handlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := os.Lstat(r.Filepath)
	if err != nil {
		return nil, err
	}
	return listerAt{fi}, nil
}

// Readlink returns a symlink's target as stored.
func (h *handlers) Readlink(p string) (string, error) { return os.Readlink(p) }

// list is dir's entries after "." and "..", as readdir(3) (and so OpenSSH's sftp-server) gives
// them; `ls -a` in OpenSSH's sftp shows them.
func list(dir string) (sftp.ListerAt, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	self, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !self.IsDir() {
		return nil, &os.PathError{Op: "opendir", Path: dir, Err: syscall.ENOTDIR}
	}
	entries, err := f.Readdir(-1)
	if err != nil {
		return nil, err
	}
	out := make(listerAt, 0, len(entries)+2)
	out = append(out, renamed{self, "."})
	if parent, err := os.Stat(path.Join(dir, "..")); err == nil {
		out = append(out, renamed{parent, ".."})
	}
	return append(out, entries...), nil
}

// renamed is a FileInfo under another name ("." and "..").
type renamed struct {
	os.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

type listerAt []os.FileInfo

// ListAt copies the entries from offset on into ls; io.EOF once none are left after them.
func (l listerAt) ListAt(ls []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[offset:])
	if n < len(ls) || offset+int64(n) == int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// LookupUserName names a uid for long listings (the number when it has no name).
func (h *handlers) LookupUserName(uid string) string {
	return h.lookup("u"+uid, func() (string, error) {
		u, err := user.LookupId(uid)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}, uid)
}

// LookupGroupName names a gid for long listings (the number when it has no name).
func (h *handlers) LookupGroupName(gid string) string {
	return h.lookup("g"+gid, func() (string, error) {
		g, err := user.LookupGroupId(gid)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	}, gid)
}

// maxNames bounds the name cache (a listing of files owned by many ids cannot grow it forever).
const maxNames = 1024

func (h *handlers) lookup(key string, find func() (string, error), id string) string {
	h.mu.Lock()
	name, ok := h.names[key]
	h.mu.Unlock()
	if ok {
		return name
	}
	name, err := find()
	if err != nil || name == "" {
		name = id
	}
	h.mu.Lock()
	if len(h.names) < maxNames {
		h.names[key] = name
	}
	h.mu.Unlock()
	return name
}

// The optional interfaces of pkg/sftp's request server that these handlers provide.
var (
	_ sftp.OpenFileWriter       = (*handlers)(nil)
	_ sftp.PosixRenameFileCmder = (*handlers)(nil)
	_ sftp.StatVFSFileCmder     = (*handlers)(nil)
	_ sftp.LstatFileLister      = (*handlers)(nil)
	_ sftp.ReadlinkFileLister   = (*handlers)(nil)
	_ sftp.NameLookupFileLister = (*handlers)(nil)
)
