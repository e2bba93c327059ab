/* base/list.h, base/bytes.h and the socket address conversions of base/addr.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/addr.h"
#include "base/bytes.h"
#include "base/list.h"
#include "test.h"

struct item {
    int value;
    struct v2s_list node;
};

static int list_values(struct v2s_list *head, int *out, int cap)
{
    struct v2s_list *n;
    int count = 0;
    V2S_LIST_FOREACH(n, head)
    {
        if (count < cap)
            out[count] = V2S_LIST_ENTRY(n, struct item, node)->value;
        count++;
    }
    return count;
}

TEST_IMPL(base_list)
{
    struct v2s_list head;
    struct item items[5];
    int got[8];
    v2s_list_init(&head);
    ASSERT(v2s_list_empty(&head));
    ASSERT(v2s_list_first(&head) == NULL);
    for (int i = 0; i < 5; i++) {
        items[i].value = i;
        v2s_list_init(&items[i].node);
        ASSERT(!v2s_list_linked(&items[i].node));
    }
    v2s_list_push_back(&head, &items[1].node);
    v2s_list_push_back(&head, &items[2].node);
    v2s_list_push_front(&head, &items[0].node);
    v2s_list_push_back(&head, &items[3].node);
    ASSERT_EQ(list_values(&head, got, 8), 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(got[i], i);
    ASSERT(v2s_list_linked(&items[2].node));
    ASSERT(V2S_LIST_ENTRY(v2s_list_first(&head), struct item, node) == &items[0]);

    /* Removal from the middle, twice (the second is harmless), then from both ends. */
    v2s_list_remove(&items[2].node);
    v2s_list_remove(&items[2].node);
    ASSERT(!v2s_list_linked(&items[2].node));
    ASSERT_EQ(list_values(&head, got, 8), 3);
    ASSERT_EQ(got[0], 0);
    ASSERT_EQ(got[1], 1);
    ASSERT_EQ(got[2], 3);

    /* Removing every node while walking. */
    struct v2s_list *n, *tmp;
    int seen = 0;
    V2S_LIST_FOREACH_SAFE(n, tmp, &head)
    {
        v2s_list_remove(n);
        seen++;
    }
    ASSERT_EQ(seen, 3);
    ASSERT(v2s_list_empty(&head));
    return 0;
}

TEST_IMPL(base_bytes)
{
    uint8_t b[8];
    v2s_put_be16(b, 0x1234);
    ASSERT_EQ(b[0], 0x12);
    ASSERT_EQ(b[1], 0x34);
    ASSERT_EQ(v2s_get_be16(b), 0x1234);
    v2s_put_be32(b, 0xdeadbeef);
    ASSERT_EQ(b[0], 0xde);
    ASSERT_EQ(b[3], 0xef);
    ASSERT_EQ(v2s_get_be32(b), 0xdeadbeefu);
    v2s_put_be64(b, 0x0102030405060708ull);
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(b[i], i + 1);
    ASSERT(v2s_get_be64(b) == 0x0102030405060708ull);
    /* The top bit survives (no sign extension through int). */
    const uint8_t top[4] = {0xff, 0xff, 0xff, 0xfe};
    ASSERT_EQ(v2s_get_be32(top), 0xfffffffeu);
    ASSERT_EQ(v2s_get_be16(top), 0xffff);
    return 0;
}

TEST_IMPL(base_sockaddr)
{
    static const struct {
        const char *addr;
        uint16_t port;
        const char *text;
    } rows[] = {
        {"10.1.2.3", 80, "10.1.2.3:80"},
        {"::1", 1080, "[::1]:1080"},
        {"fd00::5", 65535, "[fd00::5]:65535"},
        {"0.0.0.0", 0, "0.0.0.0:0"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_addr a, back;
        struct sockaddr_storage ss;
        uint16_t port;
        char text[V2S_ADDR_STRLEN];
        ASSERT_ROW(v2s_addr_parse(&a, rows[i].addr) == 0, "%zu", i);
        int len = v2s_addr_to_sockaddr(&a, rows[i].port, &ss);
        ASSERT_ROW(len == (a.family == AF_INET ? (int)sizeof(struct sockaddr_in) : (int)sizeof(struct sockaddr_in6)),
                   "%zu", i);
        ASSERT_ROW(ss.ss_family == a.family, "%zu", i);
        ASSERT_ROW(v2s_addr_from_sockaddr((struct sockaddr *)&ss, &back, &port) == 0, "%zu", i);
        ASSERT_ROW(v2s_addr_equal(&a, &back) && port == rows[i].port, "%zu", i);
        ASSERT_ROW(strcmp(v2s_sockaddr_format((struct sockaddr *)&ss, text, sizeof(text)), rows[i].text) == 0,
                   "%zu", i);
    }
    /* The port is in network order inside the socket address. */
    struct v2s_addr a;
    struct sockaddr_storage ss;
    ASSERT_EQ(v2s_addr_parse(&a, "192.0.2.1"), 0);
    ASSERT(v2s_addr_to_sockaddr(&a, 0x1234, &ss) > 0);
    ASSERT_EQ(((struct sockaddr_in *)&ss)->sin_port, htons(0x1234));

    /* Neither family: refused, and the outputs are cleared. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct v2s_addr none;
    uint16_t port = 7;
    char text[V2S_ADDR_STRLEN];
    ASSERT_EQ(v2s_addr_from_sockaddr((struct sockaddr *)&un, &none, &port), -EAFNOSUPPORT);
    ASSERT_EQ(none.family, 0);
    ASSERT_EQ(port, 0);
    ASSERT_STR_EQ(v2s_sockaddr_format((struct sockaddr *)&un, text, sizeof(text)), "?");
    memset(&none, 0, sizeof(none));
    ASSERT_EQ(v2s_addr_to_sockaddr(&none, 80, &ss), -EAFNOSUPPORT);
    return 0;
}
