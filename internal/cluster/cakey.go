package cluster

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// The cluster CA key signs the certificates of joining nodes. It is not handed to joiners and
// not kept in any member's folder: it lives in the replicated store, sealed under the root key,
//
//	sys/cluster/ca-key/<hex SHA-256 of the CA certificate>  RootSealer.SealRoot("cluster-ca-key", PKCS#8 PEM)
//
// so only an unsealed member (in practice the leader, which serves joins) can use it, and a
// reader of a data folder without the root key cannot. A bootstrapping node keeps the key in
// cluster/ca-key.pem until it is first unsealed; it then moves it into the store and deletes
// the file, and so does every node of a cluster from before this layout. The record is named by
// the CA so that a snapshot of another cluster restored here cannot replace it (restore keeps
// the current record, see restoreSnapshot).
const (
	caKeyPrefix  = "sys/cluster/ca-key/"
	caKeyPurpose = "cluster-ca-key"
)

func (n *Node) caKeyRecord() string { return caKeyPrefix + certPin(n.mat.caCert.Raw) }

// caSigner returns the CA key: this node's file while it still has one, else the store's
// record opened with the root key.
func (n *Node) caSigner(ctx context.Context) (*ecdsa.PrivateKey, error) {
	if k := n.localCAKey.Load(); k != nil {
		return k, nil
	}
	rs := n.rootSealer()
	if rs == nil {
		return nil, errors.New("this node is sealed: the cluster CA key is sealed under the root key")
	}
	return n.caSignerFromStore(ctx, rs)
}

// moveCAKeyToStore runs once the node is unsealed: it writes the local CA key file's key into
// the store (unless the record exists), checks the record opens to the same key, and deletes
// the file. It retries until it succeeds, the node is sealed again or it stops.
func (n *Node) moveCAKeyToStore() {
	defer n.wg.Done()
	for attempt := 0; ; attempt++ {
		err := n.tryMoveCAKey()
		if err == nil {
			return
		}
		if errors.Is(err, errSealed) {
			return
		}
		if attempt%20 == 0 {
			n.log.Warn("moving the cluster CA key into the store", "err", err)
		}
		select {
		case <-n.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (n *Node) tryMoveCAKey() error {
	k := n.localCAKey.Load()
	if k == nil {
		return nil
	}
	rs := n.rootSealer()
	if rs == nil {
		return errSealed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := n.caKeyRecord()
	if _, err := n.store.Get(ctx, key); errors.Is(err, store.ErrNotFound) {
		pemKey, err := keyPEM(k)
		if err != nil {
			return err
		}
		blob, err := rs.SealRoot(caKeyPurpose, pemKey)
		clear(pemKey)
		if err != nil {
			return fmt.Errorf("sealing: %w", err)
		}
		err = n.store.Apply(ctx, []store.Op{store.RequireAbsent(key), store.Put(key, blob)})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("writing the record: %w", err)
		}
		if err := n.store.WaitApplied(ctx, n.store.Raft().CommitIndex()); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	stored, err := n.caSignerFromStore(ctx, rs)
	if err != nil {
		return err
	}
	if !stored.Equal(k) {
		return fmt.Errorf("the store's cluster CA key is not this node's")
	}
	n.localCAKey.Store(nil)
	path := filepath.Join(n.mat.dir, "ca-key.pem")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", path, err)
	}
	n.log.Info("the cluster CA key now lives in the replicated store, sealed under the root key; deleted the local copy", "file", path)
	return nil
}

func (n *Node) caSignerFromStore(ctx context.Context, rs RootSealer) (*ecdsa.PrivateKey, error) {
	blob, err := n.store.Get(ctx, n.caKeyRecord())
	if err != nil {
		return nil, fmt.Errorf("reading the cluster CA key record: %w", err)
	}
	pemKey, err := rs.OpenRoot(caKeyPurpose, blob)
	if err != nil {
		return nil, fmt.Errorf("opening the cluster CA key: %w", err)
	}
	defer clear(pemKey)
	return parseKey(pemKey)
}
