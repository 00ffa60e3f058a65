package projections

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// Notification types.
const (
	NotificationAssigned   = "assigned"
	NotificationUnassigned = "unassigned"
	NotificationMadeLead   = "made_lead"
	NotificationHandedOver = "handed_over"
	// NotificationFollowUpDue tells each recipient FollowUpDue names.
	NotificationFollowUpDue = "follow_up_due"
	// NotificationRuleFoundNoOne tells the admins an assignment rule
	// found no one to assign a customer to (contract v3).
	NotificationRuleFoundNoOne = "rule_found_no_one"
)

// NotificationTypes lists every type a notification may have (the API
// document's enum is held to it).
func NotificationTypes() []string {
	return []string{NotificationAssigned, NotificationUnassigned, NotificationMadeLead, NotificationHandedOver,
		NotificationFollowUpDue, NotificationRuleFoundNoOne}
}

// Notification is what a user was told.
type Notification struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	CustomerID string    `json:"customer_id"`
	At         time.Time `json:"at"`
	Read       bool      `json:"read"`
}

// A notification is identified by (user, position), stable across
// rebuilds, so read marks (notification_reads) survive them; the API id is
// "<position>-<user id>".
func notificationsProjection() *projection {
	return &projection{
		name: Notifications,
		tables: []table{{name: "notifications", key: []string{"tenant_id", "user_id", "position"},
			columns: []string{"tenant_id", "user_id", "position", "type", "customer_id", "at"}}},
		events:     notificationRows,
		eventTypes: slices.Concat(teamEventTypes, []string{domain.TypeFollowUpDue, domain.TypeAssignmentRuleApplied}),
	}
}

// notificationRows tells the users a team event concerns: the one it
// assigns, unassigns or makes lead; a replacement tells the replacement
// it was handed the place and the replaced member it was unassigned.
func notificationRows(out rowSink, env *envelope, e domain.Event) {
	if applied, ok := e.(domain.AssignmentRuleApplied); ok {
		// A rule that found no one: the admins it names are told.
		if applied.UserID == "" {
			for _, admin := range applied.Notify {
				out.add("notifications", uid(env.TenantID), uid(admin), env.Position, NotificationRuleFoundNoOne, uid(applied.CustomerID), env.RecordedAt)
			}
		}
		return
	}
	var customerID string
	switch e := e.(type) {
	case domain.UserAssigned:
		customerID = e.CustomerID
	case domain.UserUnassigned:
		customerID = e.CustomerID
	case domain.TeamLeadChanged:
		customerID = e.CustomerID
	case domain.TeamMemberReplaced:
		customerID = e.CustomerID
	case domain.FollowUpDue:
		customerID = e.CustomerID
	default:
		return
	}
	// Parsed and boxed once for the event's rows: a rebuild makes
	// hundreds of thousands.
	tenant, customer, pos, at := any(uid(env.TenantID)), any(uid(customerID)), any(env.Position), any(env.RecordedAt)
	add := func(userID, typ string) { out.add("notifications", tenant, uid(userID), pos, typ, customer, at) }
	switch e := e.(type) {
	case domain.UserAssigned:
		add(e.UserID, NotificationAssigned)
	case domain.UserUnassigned:
		add(e.UserID, NotificationUnassigned)
	case domain.TeamLeadChanged:
		add(e.UserID, NotificationMadeLead)
	case domain.TeamMemberReplaced:
		add(e.WithUserID, NotificationHandedOver)
		add(e.UserID, NotificationUnassigned)
	case domain.FollowUpDue:
		// One row per recipient, keyed by the event's position: the
		// event is written once, so each recipient is told once.
		for _, u := range e.Recipients {
			add(u, NotificationFollowUpDue)
		}
	}
}

const (
	qNotificationsList = `SELECT n.position, n.type, n.customer_id::text, n.at, r.position IS NOT NULL
FROM notifications n
LEFT JOIN notification_reads r ON r.tenant_id = n.tenant_id AND r.user_id = n.user_id AND r.position = n.position
WHERE n.tenant_id = $1 AND n.user_id = $2 AND ($4::bigint = 0 OR n.position < $4)`

	qNotificationsUnread = `SELECT count(*) FROM notifications n
WHERE n.tenant_id = $1 AND n.user_id = $2
  AND NOT EXISTS (SELECT 1 FROM notification_reads r
                  WHERE r.tenant_id = n.tenant_id AND r.user_id = n.user_id AND r.position = n.position)`

	// qNotificationsUnreadUpTo stops counting at $3, newest first: a
	// header badge needs "99+", not an exact count over tens of thousands.
	// (Its inner WHERE ends the constant, so the visibility condition can
	// follow it.)
	qNotificationsUnreadUpTo = `SELECT count(*) FROM (SELECT 1 FROM notifications n
WHERE n.tenant_id = $1 AND n.user_id = $2
  AND NOT EXISTS (SELECT 1 FROM notification_reads r
                  WHERE r.tenant_id = n.tenant_id AND r.user_id = n.user_id AND r.position = n.position)`

	// Only the user's own notifications can be marked: ids of others' match
	// no row of theirs and are ignored.
	qNotificationsMarkRead = `INSERT INTO notification_reads (tenant_id, user_id, position)
SELECT n.tenant_id, n.user_id, n.position FROM notifications n
WHERE n.tenant_id = $1 AND n.user_id = $2 AND n.position = ANY($3::bigint[])
ON CONFLICT DO NOTHING`
)

// Notifications returns how many of the user's notifications are unread and
// the newest limit of them, older than the event at position before when it
// is not 0 (a keyset page).
func (q *Queries) Notifications(ctx context.Context, tenantID, userID string, limit int, before int64) (int, []Notification, error) {
	limit = clampLimit(limit)
	items := []Notification{}
	if !isUUID(userID) {
		return 0, items, nil
	}
	// A member under members_see "assigned" is not told about customers
	// they do not serve (any more).
	count, list := sqlArgs{tenantID, userID}, sqlArgs{tenantID, userID, limit, before}
	countSQL, listSQL := qNotificationsUnread, qNotificationsList
	if cond := visibleCond(ctx, &count, "n.customer_id"); cond != "" {
		countSQL += " AND " + cond
		listSQL += " AND " + visibleCond(ctx, &list, "n.customer_id")
	}
	var unread int
	if err := q.db(ctx).QueryRow(ctx, countSQL, count...).Scan(&unread); err != nil {
		return 0, nil, fmt.Errorf("count unread notifications: %w", err)
	}
	items, err := queryAll(ctx, q.db(ctx), func(row pgx.CollectableRow) (Notification, error) {
		var n Notification
		var pos int64
		err := row.Scan(&pos, &n.Type, &n.CustomerID, &n.At, &n.Read)
		n.ID, n.At = notificationID(pos, userID), n.At.UTC()
		return n, err
	}, listSQL+" ORDER BY n.position DESC LIMIT $3", list...)
	if err != nil {
		return 0, nil, fmt.Errorf("list notifications: %w", err)
	}
	return unread, items, nil
}

// notificationID is a notification's public id: the event's position and
// the user, so it is derived from the event and survives rebuilds.
func notificationID(position int64, userID string) string {
	return strconv.FormatInt(position, 10) + "-" + strings.ToLower(userID)
}

// MarkRead marks the user's notifications among ids as read. Ids of other
// users' notifications, and unknown ids, are ignored.
func (q *Queries) MarkRead(ctx context.Context, tenantID, userID string, ids []string) error {
	if !isUUID(userID) || len(ids) == 0 {
		return nil
	}
	var positions []int64
	for _, id := range ids {
		pos, user, ok := strings.Cut(id, "-")
		if !ok || !strings.EqualFold(user, userID) {
			continue
		}
		if p, err := strconv.ParseInt(pos, 10, 64); err == nil {
			positions = append(positions, p)
		}
	}
	if len(positions) == 0 {
		return nil
	}
	if _, err := q.pool.Exec(ctx, qNotificationsMarkRead, tenantID, userID, positions); err != nil {
		return fmt.Errorf("mark notifications read: %w", err)
	}
	return nil
}

// UnreadUpTo counts the user's unread notifications up to limit (the web
// console's header shows "99+" past it), so the count stays cheap for a
// user told about many customers.
func (q *Queries) UnreadUpTo(ctx context.Context, tenantID, userID string, limit int) (int, error) {
	if !isUUID(userID) {
		return 0, nil
	}
	args := sqlArgs{tenantID, userID, limit}
	visible := ""
	if cond := visibleCond(ctx, &args, "n.customer_id"); cond != "" {
		visible = " AND " + cond
	}
	var n int
	if err := q.db(ctx).QueryRow(ctx, qNotificationsUnreadUpTo+visible+" ORDER BY n.position DESC LIMIT $3) AS u", args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unread notifications: %w", err)
	}
	return n, nil
}
