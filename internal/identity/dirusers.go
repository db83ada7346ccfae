package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// UserInput is Graph's POST /users body, less what Strongroom has no use for.
type UserInput struct {
	UserPrincipalName string
	DisplayName       string
	MailNickname      string // default: the UPN's part before "@"
	Password          string // passwordProfile.password; hashed with argon2id, never stored
	AccountEnabled    bool
}

// CreateUser creates a user. Its user principal name is unique case-insensitively.
func (s *Service) CreateUser(ctx context.Context, in UserInput) (User, error) {
	upnKey, err := validateUPN(in.UserPrincipalName)
	if err != nil {
		return User{}, err
	}
	if err := validateDirName(in.DisplayName, "User"); err != nil {
		return User{}, err
	}
	if in.MailNickname == "" {
		in.MailNickname, _, _ = strings.Cut(in.UserPrincipalName, "@")
	}
	if err := validateMailNickname(in.MailNickname, "User"); err != nil {
		return User{}, err
	}
	if err := validatePassword(in.Password); err != nil {
		return User{}, err
	}
	iKey := prefixUPN + upnKey
	if _, err := s.st.Get(ctx, iKey); err == nil {
		return User{}, conflict("Another object with the same value for property userPrincipalName already exists.")
	}
	cred, err := s.hashSecret(ctx, uuid.NewString(), in.Password)
	if err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	rec := userRecord{V: recordVersion, ObjectID: uuid.NewString(), UPN: in.UserPrincipalName, DisplayName: in.DisplayName,
		MailNickname: in.MailNickname, Disabled: !in.AccountEnabled, Password: cred, CreatedAt: s.now().UTC()}
	uKey := prefixUser + rec.ObjectID
	uOp, err := s.putRecord(ctx, uKey, rec)
	if err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	iOp, err := s.putRecord(ctx, iKey, upnIndexRecord{V: recordVersion, ObjectID: rec.ObjectID})
	if err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	err = s.apply(ctx, []store.Op{store.RequireAbsent(iKey), store.RequireAbsent(uKey), uOp, iOp})
	if errors.Is(err, store.ErrConflict) {
		return User{}, conflict("Another object with the same value for property userPrincipalName already exists.")
	}
	if err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	return rec.user(), nil
}

// findUser reads a user by object id or user principal name, with its sealed bytes.
func (s *Service) findUser(ctx context.Context, idOrUPN string) ([]byte, *userRecord, error) {
	id, ok := normalizeID(idOrUPN)
	if !ok {
		return nil, nil, ErrObjectNotFound
	}
	if strings.Contains(id, "@") {
		var idx upnIndexRecord
		switch err := s.getRecord(ctx, prefixUPN+strings.ToLower(id), &idx); {
		case errors.Is(err, store.ErrNotFound):
			return nil, nil, ErrObjectNotFound
		case err != nil:
			return nil, nil, err
		}
		id = idx.ObjectID
	}
	sealed, err := s.st.Get(ctx, prefixUser+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrObjectNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	var rec userRecord
	if err := s.openRecord(ctx, prefixUser+id, sealed, &rec); err != nil {
		return nil, nil, err
	}
	return sealed, &rec, nil
}

// GetUser returns the user with that object id or user principal name.
func (s *Service) GetUser(ctx context.Context, idOrUPN string) (User, error) {
	_, rec, err := s.findUser(ctx, idOrUPN)
	if err != nil {
		return User{}, fmt.Errorf("reading user: %w", err)
	}
	return rec.user(), nil
}

// ListUsers returns every user, in object id order.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	err := s.scanRecords(ctx, prefixUser, func() versioned { return &userRecord{} }, func(v versioned) {
		out = append(out, v.(*userRecord).user())
	})
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return out, nil
}

// DeleteUser deletes a user with its memberships and directory roles; its tokens stop
// verifying on the next request.
func (s *Service) DeleteUser(ctx context.Context, idOrUPN string) error {
	for range 3 {
		sealed, rec, err := s.findUser(ctx, idOrUPN)
		if err != nil {
			return fmt.Errorf("deleting user: %w", err)
		}
		uKey := prefixUser + rec.ObjectID
		ops := []store.Op{store.RequireEqual(uKey, sealed), store.Delete(uKey), store.Delete(prefixUPN + strings.ToLower(rec.UPN))}
		ops = append(ops, s.cascadeOps(rec.ObjectID)...)
		err = s.apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting user: %w", err)
		}
		s.erase()
		s.dropRefreshFamilies(ctx, rec.ObjectID)
		return nil
	}
	return fmt.Errorf("deleting user: %w", store.ErrConflict)
}

// SetUserEnabled is Graph's PATCH accountEnabled for users; disabling revokes their tokens,
// refresh tokens included.
func (s *Service) SetUserEnabled(ctx context.Context, idOrUPN string, enabled bool) (User, error) {
	revoked := false
	u, err := s.updateUser(ctx, idOrUPN, func(rec *userRecord) error {
		revoked = !enabled && !rec.Disabled
		if revoked {
			rec.Generation++
		}
		rec.Disabled = !enabled
		return nil
	})
	if err == nil && revoked {
		s.dropRefreshFamilies(ctx, u.ID)
	}
	return u, err
}

// SetUserPassword replaces a user's password (Graph's PATCH passwordProfile); every token the
// old one minted stops verifying on the next request, and every refresh token issued under it
// is revoked.
func (s *Service) SetUserPassword(ctx context.Context, idOrUPN, password string) (User, error) {
	if err := validatePassword(password); err != nil {
		return User{}, err
	}
	cred, err := s.hashSecret(ctx, uuid.NewString(), password)
	if err != nil {
		return User{}, fmt.Errorf("updating user: %w", err)
	}
	u, err := s.updateUser(ctx, idOrUPN, func(rec *userRecord) error {
		rec.Password = cred
		return nil
	})
	if err == nil {
		s.erase() // the old hash is in freed pages
		s.dropRefreshFamilies(ctx, u.ID)
	}
	return u, err
}

func (s *Service) updateUser(ctx context.Context, idOrUPN string, change func(*userRecord) error) (User, error) {
	for range 3 {
		sealed, rec, err := s.findUser(ctx, idOrUPN)
		if err != nil {
			return User{}, fmt.Errorf("updating user: %w", err)
		}
		if err := change(rec); err != nil {
			return User{}, err
		}
		key := prefixUser + rec.ObjectID
		put, err := s.putRecord(ctx, key, rec)
		if err != nil {
			return User{}, err
		}
		err = s.apply(ctx, []store.Op{store.RequireEqual(key, sealed), put})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return User{}, fmt.Errorf("updating user: %w", err)
		}
		return rec.user(), nil
	}
	return User{}, fmt.Errorf("updating user: %w", store.ErrConflict)
}
