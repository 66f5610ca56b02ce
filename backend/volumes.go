package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	mounttypes "github.com/moby/moby/api/types/mount"

	"github.com/tendhq/tend/backend/types"
)

const (
	// VolumeDriver is the one volume driver: a directory under the engine
	// root.
	VolumeDriver = types.VolumeDriver
	// AnonymousVolumeLabel marks a volume the engine made for a container
	// (an image's VOLUME, -v /path): `rm -v`, --rm and a plain prune
	// remove it. Docker's label, so that tools reading it agree.
	AnonymousVolumeLabel = "com.docker.volume.anonymous"

	volumesDir     = "volumes"
	volumeDataDir  = "_data"
	volumeMetaFile = "volume.json"
	removingPrefix = ".removing-"
)

// volumeMeta is what a volume keeps beside its data.
type volumeMeta struct {
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// volumeStore keeps the volumes under <root>/volumes/<name>/: volume.json
// (0600) and _data, the directory containers mount. Directories are 0700
// but _data, which a container's non-root user may need to reach (0755,
// or the mode of the image's directory it was filled from).
//
// Concurrency: mu guards the maps; it is a leaf (no engine or container
// lock is taken under it). A volume's data is deleted after it left the
// maps, under a name no lookup finds.
type volumeStore struct {
	dir string
	log *log.Entry

	// copyMu serialises copy-ups, so that two containers creating one
	// new volume at once do not both fill it.
	copyMu sync.Mutex

	mu   sync.Mutex
	vols map[string]*volumeMeta         // (mu)
	refs map[string]map[string]struct{} // (mu) volume name -> ids of the containers mounting it
}

func newVolumeStore(dir string, lg *log.Entry) *volumeStore {
	return &volumeStore{dir: dir, log: lg, vols: map[string]*volumeMeta{}, refs: map[string]map[string]struct{}{}}
}

func (s *volumeStore) volumeDir(name string) string { return filepath.Join(s.dir, name) }
func (s *volumeStore) dataDir(name string) string   { return filepath.Join(s.dir, name, volumeDataDir) }

// load reads the volumes on disk and finishes removals a crash cut short.
func (s *volumeStore) load() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create volumes directory: %w", err)
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return fmt.Errorf("volumes directory %s: %w", s.dir, err)
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read volumes directory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ent := range ents {
		name := ent.Name()
		p := filepath.Join(s.dir, name)
		if strings.HasPrefix(name, removingPrefix) {
			if err := os.RemoveAll(p); err != nil {
				s.log.WithError(err).WithField("path", p).Warn("finish the removal of a volume")
			}
			continue
		}
		if !ent.IsDir() || ValidateVolumeName(name) != nil {
			s.log.WithField("path", p).Warn("not a volume: left alone")
			continue
		}
		meta := &volumeMeta{}
		b, err := os.ReadFile(filepath.Join(p, volumeMetaFile))
		if err == nil {
			err = json.Unmarshal(b, meta)
		}
		if err != nil {
			// The data matters more than the metadata: keep the volume.
			s.log.WithError(err).WithField("volume", name).Warn("volume metadata unreadable: using the directory's time")
			meta = &volumeMeta{}
			if fi, err := os.Stat(p); err == nil {
				meta.Created = fi.ModTime()
			}
		}
		if err := os.MkdirAll(s.dataDir(name), 0o755); err != nil {
			s.log.WithError(err).WithField("volume", name).Warn("volume data directory")
			continue
		}
		s.vols[name] = meta
	}
	return nil
}

// createLocked makes a volume's directories and metadata.
func (s *volumeStore) createLocked(name string, labels map[string]string, now time.Time) (retErr error) {
	dir := s.volumeDir(name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Mkdir(s.dataDir(name), 0o755); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	// Mkdir applies the umask: the data dir is exactly 0755.
	if err := os.Chmod(s.dataDir(name), 0o755); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	meta := &volumeMeta{Created: now.UTC(), Labels: labels}
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, volumeMetaFile), b); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	// The entries of the metadata file and of the volume's directory must
	// reach the disk before the volume is acknowledged, as a record's do.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	s.vols[name] = meta
	return nil
}

func writeFileSync(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// create makes a volume, or returns the existing one of that name (as
// docker does).
func (s *volumeStore) create(name string, labels map[string]string, now time.Time) (Volume, error) {
	if err := ValidateVolumeName(name); err != nil {
		return Volume{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[name]; !ok {
		if err := s.createLocked(name, labels, now); err != nil {
			return Volume{}, err
		}
	}
	return s.describeLocked(name), nil
}

// acquire records that container id mounts the volume, creating it first
// when missing (created reports that). An anonymous volume gets a new
// name (64 hex characters) and AnonymousVolumeLabel.
func (s *volumeStore) acquire(name, id string, labels map[string]string, now time.Time) (_ string, created bool, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		name = newVolumeName()
		labels = map[string]string{AnonymousVolumeLabel: ""}
	} else if err := ValidateVolumeName(name); err != nil {
		return "", false, err
	}
	if _, ok := s.vols[name]; !ok {
		if err := s.createLocked(name, labels, now); err != nil {
			return "", false, err
		}
		created = true
	}
	s.refLocked(name, id)
	return name, created, nil
}

func (s *volumeStore) refLocked(name, id string) {
	if s.refs[name] == nil {
		s.refs[name] = map[string]struct{}{}
	}
	s.refs[name][id] = struct{}{}
}

// ref records a mount of a loaded container.
func (s *volumeStore) ref(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refLocked(name, id)
}

// release forgets container id's mount of the volume.
func (s *volumeStore) release(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refs[name], id)
	if len(s.refs[name]) == 0 {
		delete(s.refs, name)
	}
}

// volumeInUseError says which containers hold a volume.
type volumeInUseError struct {
	name string
	ids  []string
}

func (e *volumeInUseError) Error() string {
	return fmt.Sprintf("volume %s is in use by container %s", e.name, strings.Join(e.ids, ", "))
}

func (e *volumeInUseError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// remove deletes an unused volume and its data.
func (s *volumeStore) remove(name string) error {
	if err := ValidateVolumeName(name); err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.vols[name]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
	}
	if refs := s.refs[name]; len(refs) > 0 {
		ids := make([]string, 0, len(refs))
		for id := range refs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		s.mu.Unlock()
		return &volumeInUseError{name: name, ids: ids}
	}
	gone, err := s.detachLocked(name)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = removeTree(gone)
	return err
}

// detachLocked renames a volume's directory out of the way and forgets the
// volume: a crash before the data is gone leaves a name that load deletes.
func (s *volumeStore) detachLocked(name string) (string, error) {
	gone := filepath.Join(s.dir, removingPrefix+name+"-"+newVolumeName()[:12])
	if err := os.Rename(s.volumeDir(name), gone); err != nil {
		return "", fmt.Errorf("remove volume %s: %w", name, err)
	}
	delete(s.vols, name)
	return gone, nil
}

// removeTree deletes dir and returns the bytes its regular files took.
func removeTree(dir string) (uint64, error) {
	var size uint64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += uint64(fi.Size())
			}
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return size, fmt.Errorf("remove volume data %s: %w", dir, err)
	}
	return size, nil
}

// prune removes the unused volumes: anonymous ones, or all with all.
func (s *volumeStore) prune(all bool) (VolumePruneReport, error) {
	var rep VolumePruneReport
	var gone []string
	s.mu.Lock()
	for name, meta := range s.vols {
		if len(s.refs[name]) > 0 {
			continue
		}
		if _, anon := meta.Labels[AnonymousVolumeLabel]; !anon && !all {
			continue
		}
		p, err := s.detachLocked(name)
		if err != nil {
			s.log.WithError(err).WithField("volume", name).Warn("prune")
			continue
		}
		gone = append(gone, p)
		rep.VolumesDeleted = append(rep.VolumesDeleted, name)
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range gone {
		n, err := removeTree(p)
		rep.SpaceReclaimed += n
		errs = append(errs, err)
	}
	sort.Strings(rep.VolumesDeleted)
	return rep, errors.Join(errs...)
}

func (s *volumeStore) describeLocked(name string) Volume {
	meta := s.vols[name]
	labels := map[string]string{}
	for k, v := range meta.Labels {
		labels[k] = v
	}
	return Volume{
		Name: name, Driver: VolumeDriver, Mountpoint: s.dataDir(name), Scope: "local",
		CreatedAt: meta.Created.Format(time.RFC3339), Labels: labels, Options: map[string]string{},
	}
}

func (s *volumeStore) get(name string) (Volume, error) {
	if err := ValidateVolumeName(name); err != nil {
		return Volume{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[name]; !ok {
		return Volume{}, fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
	}
	return s.describeLocked(name), nil
}

func (s *volumeStore) list() []Volume {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Volume, 0, len(s.vols))
	for name := range s.vols {
		out = append(out, s.describeLocked(name))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *volumeStore) isAnonymous(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	meta, ok := s.vols[name]
	if !ok {
		return false
	}
	_, anon := meta.Labels[AnonymousVolumeLabel]
	return anon
}

// newVolumeName is a random 64-hex name, as docker gives anonymous
// volumes.
func newVolumeName() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// CreateVolume creates a named volume (a new random name when empty), or
// returns the existing volume of that name.
func (e *Engine) CreateVolume(ctx context.Context, req VolumeCreateRequest) (*Volume, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	if req.Driver != "" && req.Driver != VolumeDriver {
		return nil, fmt.Errorf("volume driver %q is not supported: the engine has the %s driver only: %w", req.Driver, VolumeDriver, errdefs.ErrInvalidArgument)
	}
	if len(req.DriverOpts) > 0 {
		return nil, fmt.Errorf("volume options are not supported: the %s driver takes none: %w", VolumeDriver, errdefs.ErrInvalidArgument)
	}
	if req.ClusterVolumeSpec != nil {
		return nil, fmt.Errorf("cluster volumes are not supported: %w", errdefs.ErrInvalidArgument)
	}
	if err := CheckLabels(req.Labels); err != nil {
		return nil, err
	}
	name := req.Name
	if name == "" {
		name = newVolumeName()
	}
	v, err := e.volumes.create(name, req.Labels, e.clock.Now())
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Volumes lists the volumes, sorted by name.
func (e *Engine) Volumes(ctx context.Context) ([]Volume, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	return e.volumes.list(), nil
}

// InspectVolume returns a volume; errdefs.ErrNotFound when there is none.
func (e *Engine) InspectVolume(ctx context.Context, name string) (*Volume, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	v, err := e.volumes.get(name)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// RemoveVolume deletes a volume and its data. A volume that a container
// mounts (whatever its state) is refused with errdefs.ErrFailedPrecondition;
// an unknown one is errdefs.ErrNotFound unless force.
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) error {
	if e.isClosed() {
		return ErrClosed
	}
	err := e.volumes.remove(name)
	var inUse *volumeInUseError
	switch {
	case err == nil:
		return nil
	case force && errdefs.IsNotFound(err):
		return nil
	case errors.As(err, &inUse):
		names := make([]string, 0, len(inUse.ids))
		for _, id := range inUse.ids {
			names = append(names, e.describeContainer(id))
		}
		return fmt.Errorf("volume %s is in use by container %s: remove the container first (engine rm -v): %w",
			name, strings.Join(names, ", "), errdefs.ErrFailedPrecondition)
	}
	return err
}

// describeContainer names a container for a message: its name and short id.
func (e *Engine) describeContainer(id string) string {
	e.mu.Lock()
	c := e.ctrs[id]
	e.mu.Unlock()
	if c == nil {
		return shortID(id)
	}
	c.mu.Lock() // Rename writes the name under it
	name := c.rec.Name
	c.mu.Unlock()
	return fmt.Sprintf("%s (%s)", name, shortID(id))
}

// PruneVolumes removes the volumes no container mounts: the anonymous
// ones, or all of them with all (docker volume prune [-a]).
func (e *Engine) PruneVolumes(ctx context.Context, all bool) (VolumePruneReport, error) {
	if e.isClosed() {
		return VolumePruneReport{}, ErrClosed
	}
	return e.volumes.prune(all)
}

// refVolumes counts the volumes a loaded container mounts.
func (e *Engine) refVolumes(r *Container) {
	for _, m := range r.Mounts {
		if m.Type == mounttypes.TypeVolume && m.Name != "" {
			e.volumes.ref(m.Name, r.ID)
		}
	}
}

// releaseVolumes forgets the mounts of a removed container.
func (e *Engine) releaseVolumes(id string, mounts []MountPoint) {
	for _, m := range mounts {
		if m.Type == mounttypes.TypeVolume && m.Name != "" {
			e.volumes.release(m.Name, id)
		}
	}
}

// removeAnonymousVolumes removes the anonymous volumes among mounts that
// no other container mounts (those are left, as docker does).
func (e *Engine) removeAnonymousVolumes(mounts []MountPoint) {
	for _, m := range mounts {
		if m.Type != mounttypes.TypeVolume || !e.volumes.isAnonymous(m.Name) {
			continue
		}
		if err := e.volumes.remove(m.Name); err != nil {
			e.log.WithError(err).WithField("volume", m.Name).Warn("remove an anonymous volume of a removed container")
		}
	}
}
