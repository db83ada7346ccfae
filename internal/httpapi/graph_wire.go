package httpapi

import (
	"time"

	"github.com/strongroom/strongroom/internal/identity"
)

// Microsoft Graph v1.0 wire shapes of the directory, field for field what az and the Graph
// SDKs decode (null where Graph answers null for a property Strongroom does not have).

type graphList[T any] struct {
	Context string `json:"@odata.context"`
	Value   []T    `json:"value"`
}

type graphPasswordCredential struct {
	CustomKeyIdentifier *string `json:"customKeyIdentifier"`
	DisplayName         *string `json:"displayName"`
	EndDateTime         string  `json:"endDateTime"`
	Hint                string  `json:"hint"`
	KeyID               string  `json:"keyId"`
	SecretText          *string `json:"secretText"`
	StartDateTime       string  `json:"startDateTime"`
}

type graphApplication struct {
	Context             string                    `json:"@odata.context,omitempty"`
	ID                  string                    `json:"id"`
	AppID               string                    `json:"appId"`
	DisplayName         string                    `json:"displayName"`
	CreatedDateTime     string                    `json:"createdDateTime"`
	DeletedDateTime     *string                   `json:"deletedDateTime"`
	SignInAudience      string                    `json:"signInAudience"`
	PublisherDomain     *string                   `json:"publisherDomain"`
	IdentifierURIs      []string                  `json:"identifierUris"`
	Tags                []string                  `json:"tags"`
	KeyCredentials      []struct{}                `json:"keyCredentials"`
	PasswordCredentials []graphPasswordCredential `json:"passwordCredentials"`
}

type graphServicePrincipal struct {
	Context                string                    `json:"@odata.context,omitempty"`
	ID                     string                    `json:"id"`
	AppID                  string                    `json:"appId"`
	DisplayName            string                    `json:"displayName"`
	AppDisplayName         string                    `json:"appDisplayName"`
	AccountEnabled         bool                      `json:"accountEnabled"`
	AppOwnerOrganizationID string                    `json:"appOwnerOrganizationId"`
	DeletedDateTime        *string                   `json:"deletedDateTime"`
	ServicePrincipalNames  []string                  `json:"servicePrincipalNames"`
	ServicePrincipalType   string                    `json:"servicePrincipalType"`
	SignInAudience         string                    `json:"signInAudience"`
	Tags                   []string                  `json:"tags"`
	KeyCredentials         []struct{}                `json:"keyCredentials"`
	PasswordCredentials    []graphPasswordCredential `json:"passwordCredentials"`
}

type graphUser struct {
	Context           string   `json:"@odata.context,omitempty"`
	ODataType         string   `json:"@odata.type,omitempty"`
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	MailNickname      string   `json:"mailNickname"`
	AccountEnabled    bool     `json:"accountEnabled"`
	BusinessPhones    []string `json:"businessPhones"`
	GivenName         *string  `json:"givenName"`
	JobTitle          *string  `json:"jobTitle"`
	Mail              *string  `json:"mail"`
	MobilePhone       *string  `json:"mobilePhone"`
	OfficeLocation    *string  `json:"officeLocation"`
	PreferredLanguage *string  `json:"preferredLanguage"`
	Surname           *string  `json:"surname"`
}

type graphGroup struct {
	Context         string   `json:"@odata.context,omitempty"`
	ODataType       string   `json:"@odata.type,omitempty"`
	ID              string   `json:"id"`
	DisplayName     string   `json:"displayName"`
	MailNickname    string   `json:"mailNickname"`
	MailEnabled     bool     `json:"mailEnabled"`
	SecurityEnabled bool     `json:"securityEnabled"`
	Description     *string  `json:"description"`
	GroupTypes      []string `json:"groupTypes"`
	Mail            *string  `json:"mail"`
	CreatedDateTime string   `json:"createdDateTime"`
	DeletedDateTime *string  `json:"deletedDateTime"`
}

// graphMember is a directoryObject in a members list: its @odata.type says which it is.
type graphMember struct {
	ODataType         string  `json:"@odata.type"`
	ID                string  `json:"id"`
	DisplayName       string  `json:"displayName"`
	UserPrincipalName *string `json:"userPrincipalName,omitempty"`
	AppID             *string `json:"appId,omitempty"`
}

type graphRoleAssignment struct {
	Context          string `json:"@odata.context,omitempty"`
	ID               string `json:"id"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	DirectoryScopeID string `json:"directoryScopeId"`
}

type graphRoleDefinition struct {
	ID          string `json:"id"`
	TemplateID  string `json:"templateId"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
	IsBuiltIn   bool   `json:"isBuiltIn"`
	IsEnabled   bool   `json:"isEnabled"`
}

// Request bodies.

type graphApplicationInput struct {
	DisplayName *string `json:"displayName"`
}

type graphAddPasswordInput struct {
	PasswordCredential *struct {
		DisplayName *string `json:"displayName"`
		EndDateTime *string `json:"endDateTime"`
	} `json:"passwordCredential"`
}

type graphRemovePasswordInput struct {
	KeyID *string `json:"keyId"`
}

type graphServicePrincipalInput struct {
	AppID *string `json:"appId"`
}

type graphServicePrincipalPatch struct {
	AccountEnabled *bool `json:"accountEnabled"`
}

type graphUserInput struct {
	AccountEnabled    *bool   `json:"accountEnabled"`
	DisplayName       *string `json:"displayName"`
	MailNickname      *string `json:"mailNickname"`
	UserPrincipalName *string `json:"userPrincipalName"`
	PasswordProfile   *struct {
		Password                      *string `json:"password"`
		ForceChangePasswordNextSignIn bool    `json:"forceChangePasswordNextSignIn"`
	} `json:"passwordProfile"`
}

type graphGroupInput struct {
	DisplayName     *string  `json:"displayName"`
	MailNickname    *string  `json:"mailNickname"`
	MailEnabled     *bool    `json:"mailEnabled"`
	SecurityEnabled *bool    `json:"securityEnabled"`
	Description     *string  `json:"description"`
	GroupTypes      []string `json:"groupTypes"`
}

type graphRefInput struct {
	ODataID *string `json:"@odata.id"`
}

type graphRoleAssignmentInput struct {
	PrincipalID      *string `json:"principalId"`
	RoleDefinitionID *string `json:"roleDefinitionId"`
	DirectoryScopeID *string `json:"directoryScopeId"`
}

type graphCheckMemberGroupsInput struct {
	GroupIDs []string `json:"groupIds"`
}

// graphTime is Graph's timestamp format (whole seconds, UTC).
func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func wirePassword(c identity.PasswordCredential) graphPasswordCredential {
	out := graphPasswordCredential{EndDateTime: graphTime(c.EndDateTime), Hint: c.Hint, KeyID: c.KeyID, StartDateTime: graphTime(c.StartDateTime)}
	if c.DisplayName != "" {
		out.DisplayName = &c.DisplayName
	}
	if c.SecretText != "" {
		out.SecretText = &c.SecretText
	}
	return out
}

func wireApplication(a identity.Application) graphApplication {
	out := graphApplication{ID: a.ID, AppID: a.AppID, DisplayName: a.DisplayName, CreatedDateTime: graphTime(a.CreatedAt),
		SignInAudience: "AzureADMyOrg", IdentifierURIs: []string{}, Tags: []string{}, KeyCredentials: []struct{}{},
		PasswordCredentials: make([]graphPasswordCredential, 0, len(a.PasswordCredentials))}
	for _, c := range a.PasswordCredentials {
		out.PasswordCredentials = append(out.PasswordCredentials, wirePassword(c))
	}
	return out
}

func wireServicePrincipal(sp identity.ServicePrincipal, tenantID string) graphServicePrincipal {
	return graphServicePrincipal{ID: sp.ID, AppID: sp.AppID, DisplayName: sp.DisplayName, AppDisplayName: sp.DisplayName,
		AccountEnabled: sp.AccountEnabled, AppOwnerOrganizationID: tenantID, ServicePrincipalNames: []string{sp.AppID},
		ServicePrincipalType: "Application", SignInAudience: "AzureADMyOrg", Tags: []string{}, KeyCredentials: []struct{}{},
		PasswordCredentials: []graphPasswordCredential{}}
}

func wireUser(u identity.User) graphUser {
	return graphUser{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName, MailNickname: u.MailNickname,
		AccountEnabled: u.AccountEnabled, BusinessPhones: []string{}}
}

func wireGroup(g identity.Group) graphGroup {
	out := graphGroup{ID: g.ID, DisplayName: g.DisplayName, MailNickname: g.MailNickname, SecurityEnabled: g.SecurityEnabled,
		GroupTypes: []string{}, CreatedDateTime: graphTime(g.CreatedAt)}
	if g.Description != "" {
		out.Description = &g.Description
	}
	return out
}

func wireMember(o identity.DirectoryObject) graphMember {
	m := graphMember{ID: o.ID, DisplayName: o.DisplayName}
	switch o.Type {
	case identity.TypeUser:
		m.ODataType, m.UserPrincipalName = "#microsoft.graph.user", &o.UPN
	case identity.TypeServicePrincipal:
		m.ODataType, m.AppID = "#microsoft.graph.servicePrincipal", &o.AppID
	default:
		m.ODataType = "#microsoft.graph.group"
	}
	return m
}

func wireRoleAssignment(r identity.DirectoryRoleAssignment) graphRoleAssignment {
	return graphRoleAssignment{ID: r.ID, PrincipalID: r.PrincipalID, RoleDefinitionID: r.RoleDefinitionID, DirectoryScopeID: r.DirectoryScopeID}
}
