package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// GroupInput is Graph's POST /groups body, less what Strongroom has no use for.
type GroupInput struct {
	DisplayName     string
	MailNickname    string
	SecurityEnabled bool
	Description     string
}

// CreateGroup creates a group with no members.
func (s *Service) CreateGroup(ctx context.Context, in GroupInput) (Group, error) {
	if err := validateDirName(in.DisplayName, "Group"); err != nil {
		return Group{}, err
	}
	if err := validateMailNickname(in.MailNickname, "Group"); err != nil {
		return Group{}, err
	}
	if len(in.Description) > maxDescriptionLen {
		return Group{}, badInput("Invalid value specified for property 'description' of resource 'Group'.")
	}
	rec := groupRecord{V: recordVersion, ID: uuid.NewString(), DisplayName: in.DisplayName, MailNickname: in.MailNickname,
		SecurityEnabled: in.SecurityEnabled, Description: in.Description, CreatedAt: s.now().UTC()}
	key := prefixGroup + rec.ID
	put, err := s.putRecord(ctx, key, rec)
	if err != nil {
		return Group{}, fmt.Errorf("creating group: %w", err)
	}
	if err := s.apply(ctx, []store.Op{store.RequireAbsent(key), put}); err != nil {
		return Group{}, fmt.Errorf("creating group: %w", err)
	}
	return rec.group(), nil
}

func (s *Service) findGroup(ctx context.Context, id string) ([]byte, *groupRecord, error) {
	gid, ok := normalizeID(id)
	if !ok {
		return nil, nil, ErrObjectNotFound
	}
	sealed, err := s.st.Get(ctx, prefixGroup+gid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrObjectNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	var rec groupRecord
	if err := s.openRecord(ctx, prefixGroup+gid, sealed, &rec); err != nil {
		return nil, nil, err
	}
	return sealed, &rec, nil
}

// GetGroup returns the group with that object id.
func (s *Service) GetGroup(ctx context.Context, id string) (Group, error) {
	_, rec, err := s.findGroup(ctx, id)
	if err != nil {
		return Group{}, fmt.Errorf("reading group: %w", err)
	}
	return rec.group(), nil
}

// ListGroups returns every group, in object id order.
func (s *Service) ListGroups(ctx context.Context) ([]Group, error) {
	var out []Group
	err := s.scanRecords(ctx, prefixGroup, func() versioned { return &groupRecord{} }, func(v versioned) {
		out = append(out, v.(*groupRecord).group())
	})
	if err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	return out, nil
}

// DeleteGroup deletes a group, its membership records (both its members and its own
// memberships in other groups) and its directory roles, in one write.
func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	for range 3 {
		sealed, rec, err := s.findGroup(ctx, id)
		if err != nil {
			return fmt.Errorf("deleting group: %w", err)
		}
		key := prefixGroup + rec.ID
		ops := []store.Op{store.RequireEqual(key, sealed), store.Delete(key)}
		// Its members from the store too: memory may lag a member added a moment ago.
		seen := map[string]bool{}
		err = s.st.Scan(ctx, prefixMember+rec.ID+"/", "", func(k string, _ []byte) bool {
			seen[k] = true
			ops = append(ops, store.Delete(k))
			return true
		})
		if err != nil {
			return fmt.Errorf("deleting group: %w", err)
		}
		for _, op := range s.cascadeOps(rec.ID) {
			if !seen[op.Key] {
				ops = append(ops, op)
			}
		}
		err = s.apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting group: %w", err)
		}
		return nil
	}
	return fmt.Errorf("deleting group: %w", store.ErrConflict)
}

// objectKey returns the storage key and type of the directory object with that object id.
func (s *Service) objectKey(ctx context.Context, id string) (string, string, error) {
	for _, c := range []struct{ prefix, typ string }{
		{prefixUser, TypeUser}, {prefixPrincipal, TypeServicePrincipal}, {prefixGroup, TypeGroup},
	} {
		_, err := s.st.Get(ctx, c.prefix+id)
		if err == nil {
			return c.prefix + id, c.typ, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", "", err
		}
	}
	return "", "", ErrObjectNotFound
}

// AddMember adds a user, service principal or group to a group (Graph's members/$ref). The
// write requires both objects to be unchanged since they were read, so a member cannot be
// added to a group (or be) deleted at the same moment.
func (s *Service) AddMember(ctx context.Context, groupID, memberID string) error {
	gSealed, g, err := s.findGroup(ctx, groupID)
	if err != nil {
		return fmt.Errorf("adding group member: %w", err)
	}
	mid, ok := objectID(memberID)
	if !ok {
		return fmt.Errorf("adding group member: %w", badInput("Invalid object identifier '%s'.", echoID(memberID)))
	}
	if mid == g.ID {
		return fmt.Errorf("adding group member: %w", badInput("A group cannot be a member of itself."))
	}
	mKey, typ, err := s.objectKey(ctx, mid)
	if errors.Is(err, ErrObjectNotFound) {
		return fmt.Errorf("adding group member: %w", &InputError{Kind: ErrObjectNotFound, Msg: fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", mid)})
	}
	if err != nil {
		return fmt.Errorf("adding group member: %w", err)
	}
	key := prefixMember + g.ID + "/" + mid
	put, err := s.putRecord(ctx, key, memberRecord{V: recordVersion, MemberID: mid, Type: typ})
	if err != nil {
		return fmt.Errorf("adding group member: %w", err)
	}
	ops := []store.Op{store.RequireEqual(prefixGroup+g.ID, gSealed), store.RequireEqual(mKey, mustGet(ctx, s, mKey)),
		store.RequireAbsent(key), put}
	if err := s.apply(ctx, ops); errors.Is(err, store.ErrConflict) {
		if _, err := s.st.Get(ctx, key); err == nil {
			return fmt.Errorf("adding group member: %w", conflict("One or more added object references already exist for the following modified properties: 'members'."))
		}
		return fmt.Errorf("adding group member: %w", err)
	} else if err != nil {
		return fmt.Errorf("adding group member: %w", err)
	}
	return nil
}

// RemoveMember removes a direct member from a group; it stops counting (GroupsOf, and every
// decision made from it) on the next request on every node.
func (s *Service) RemoveMember(ctx context.Context, groupID, memberID string) error {
	_, g, err := s.findGroup(ctx, groupID)
	if err != nil {
		return fmt.Errorf("removing group member: %w", err)
	}
	mid, ok := normalizeID(memberID)
	if !ok {
		return fmt.Errorf("removing group member: %w", ErrObjectNotFound)
	}
	key := prefixMember + g.ID + "/" + mid
	sealed, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("removing group member: %w", ErrObjectNotFound)
	}
	if err != nil {
		return fmt.Errorf("removing group member: %w", err)
	}
	if err := s.apply(ctx, []store.Op{store.RequireEqual(key, sealed), store.Delete(key)}); err != nil {
		return fmt.Errorf("removing group member: %w", err)
	}
	return nil
}

// ListMembers returns a group's direct members, in object id order.
func (s *Service) ListMembers(ctx context.Context, groupID string) ([]DirectoryObject, error) {
	_, g, err := s.findGroup(ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("listing group members: %w", err)
	}
	var ids []string
	err = s.st.Scan(ctx, prefixMember+g.ID+"/", "", func(k string, _ []byte) bool {
		ids = append(ids, strings.TrimPrefix(k, prefixMember+g.ID+"/"))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("listing group members: %w", err)
	}
	out := make([]DirectoryObject, 0, len(ids))
	for _, id := range ids {
		o, err := s.GetObject(ctx, id)
		if errors.Is(err, ErrObjectNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("listing group members: %w", err)
		}
		out = append(out, o)
	}
	return out, nil
}

// GetObject returns the user, service principal or group with that object id.
func (s *Service) GetObject(ctx context.Context, id string) (DirectoryObject, error) {
	oid, ok := normalizeID(id)
	if !ok {
		return DirectoryObject{}, ErrObjectNotFound
	}
	if _, u, err := s.findUser(ctx, oid); err == nil {
		return DirectoryObject{ID: u.ObjectID, Type: TypeUser, DisplayName: u.DisplayName, UPN: u.UPN}, nil
	} else if !errors.Is(err, ErrObjectNotFound) {
		return DirectoryObject{}, err
	}
	if p, err := s.loadPrincipal(ctx, oid); err == nil {
		return DirectoryObject{ID: p.ObjectID, Type: TypeServicePrincipal, DisplayName: p.DisplayName, AppID: p.AppID}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return DirectoryObject{}, err
	}
	if _, g, err := s.findGroup(ctx, oid); err == nil {
		return DirectoryObject{ID: g.ID, Type: TypeGroup, DisplayName: g.DisplayName}, nil
	} else if !errors.Is(err, ErrObjectNotFound) {
		return DirectoryObject{}, err
	}
	return DirectoryObject{}, ErrObjectNotFound
}

// CheckMemberGroups returns those of groupIDs that objectID is a member of, directly or
// transitively (Graph's checkMemberGroups), from memory.
func (s *Service) CheckMemberGroups(objectID string, groupIDs []string) []string {
	all := s.GroupsOf(objectID)
	out := []string{}
	for _, g := range groupIDs {
		if id, ok := normalizeID(g); ok && slices.Contains(all, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
