/* One intrusive doubly linked list for every layer (the pattern of libuv's src/queue.h): an object
 * embeds a struct v2s_list node and sits on a list without any allocation; a list head is a node
 * that points at itself when empty. Removal is O(1) and needs no head. All inline, no I/O. */
#ifndef VPN2SOCKS_BASE_LIST_H
#define VPN2SOCKS_BASE_LIST_H

#include <assert.h>
#include <stddef.h>

struct v2s_list {
    struct v2s_list *next, *prev;
};

/* The object that embeds node as its member field. */
#define V2S_LIST_ENTRY(node, type, field) ((type *)(void *)((char *)(node) - offsetof(type, field)))

/* For each node on head: do not remove it inside the loop (use V2S_LIST_FOREACH_SAFE). */
#define V2S_LIST_FOREACH(n, head) for ((n) = (head)->next; (n) != (head); (n) = (n)->next)
/* For each node, where the body may remove n: tmp holds the next one. */
#define V2S_LIST_FOREACH_SAFE(n, tmp, head)                                                        \
    for ((n) = (head)->next, (tmp) = (n)->next; (n) != (head); (n) = (tmp), (tmp) = (n)->next)

/* Makes an empty list, or a node that is on none (v2s_list_linked() is then 0). */
static inline void v2s_list_init(struct v2s_list *n)
{
    n->next = n;
    n->prev = n;
}

static inline int v2s_list_empty(const struct v2s_list *head)
{
    return head->next == head;
}

/* 1 if node n is on some list (it was initialized and not removed since). */
static inline int v2s_list_linked(const struct v2s_list *n)
{
    return n->next != n;
}

static inline void v2s_list_insert_after(struct v2s_list *at, struct v2s_list *n)
{
    assert(!v2s_list_linked(n));
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
}

static inline void v2s_list_push_front(struct v2s_list *head, struct v2s_list *n)
{
    v2s_list_insert_after(head, n);
}

static inline void v2s_list_push_back(struct v2s_list *head, struct v2s_list *n)
{
    v2s_list_insert_after(head->prev, n);
}

/* Takes n off its list; n is then unlinked, and removing it again is harmless. */
static inline void v2s_list_remove(struct v2s_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    v2s_list_init(n);
}

/* The first node, or NULL when the list is empty. */
static inline struct v2s_list *v2s_list_first(const struct v2s_list *head)
{
    return v2s_list_empty(head) ? NULL : head->next;
}

#endif
