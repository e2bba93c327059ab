/* OpenVPN's word splitter, shared by the .ovpn parser and the PUSH_REPLY parser, and the text
 * classes both read (white space, base64 digits). Pure code. */
#ifndef VPN2SOCKS_OPENVPN_WORDS_H
#define VPN2SOCKS_OPENVPN_WORDS_H

/* Splits one OpenVPN option line into words the way OpenVPN does (whitespace, "double" and
 * 'single' quotes, backslash escapes, # and ; comments). Returns the number of words (<= max),
 * or -EINVAL for an unterminated quote or too many words; words point into buf, which is
 * modified. */
int ovpn_split_words(char *buf, char **words, int max);
/* ovpn_split_words that also says why a line was refused: *why is set to a sentence (a static
 * string) whenever -EINVAL is returned. */
int ovpn_split_words_why(char *buf, char **words, int max, const char **why);
/* The characters OpenVPN counts as white space between words: space, \t, \n, \r, \v, \f. */
int ovpn_is_space(char c);
/* The value of one digit of standard base64 (RFC 4648 4: A-Z a-z 0-9 + /), or -1. */
int ovpn_base64_digit(int c);

#endif
