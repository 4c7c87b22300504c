// SPDX-License-Identifier: MIT
/*
 * The fence runner (lib/fence.c): only an exit status of 0 counts as
 * fenced; the guest and peer are appended to the command's arguments
 * and set in its environment; a hung command is killed, with everything
 * it started, at its deadline.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/common.h"
#include "tiber/fence.h"

#define SEC TB_NSEC_PER_SEC

static char dir[80];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/tiber-fence.XXXXXX", tb_test_tmp());
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Write an executable script @name in the test's directory; its path
 * goes to @path. */
static void script(const char *name, const char *body, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
}

static void teardown(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(exit_status_decides)
{
	ck_assert_int_eq(tb_fence_run("t", "true", "g", "p", 5 * SEC), 0);
	ck_assert_int_eq(tb_fence_run("t", "exit 1", "g", "p", 5 * SEC), -EIO);
	char sig[96];

	script("sig", "kill -9 $$", sig, sizeof(sig));
	ck_assert_int_eq(tb_fence_run("t", sig, "g", "p", 5 * SEC), -EIO);
	ck_assert_int_eq(tb_fence_run("t", "/nonexistent/fence", "g", "p",
				      5 * SEC),
			 -EIO); /* sh: not found, 127 */
}
END_TEST

START_TEST(guest_and_peer_are_passed)
{
	char cmd[96], body[256], want[128], got[128] = "";
	FILE *f;

	snprintf(body, sizeof(body),
		 "echo \"$#|$1|$2|$TIBER_GUEST|$TIBER_PEER\" > %s/args", dir);
	script("args.sh", body, cmd, sizeof(cmd));
	ck_assert_int_eq(
		tb_fence_run("t", cmd, "web 1", "10.0.0.2:7700", 5 * SEC), 0);
	snprintf(want, sizeof(want), "%s/args", dir);
	f = fopen(want, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(got, sizeof(got), f));
	fclose(f);
	ck_assert_str_eq(got, "2|web 1|10.0.0.2:7700|web 1|10.0.0.2:7700\n");
}
END_TEST

/* The pid a script wrote to @path. */
static int read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	return pid;
}

/* @pid has died: gone, or a zombie its reaper has not collected yet. */
static bool dead(int pid)
{
	char path[64], st[256], *p;
	FILE *f;

	if (kill(pid, 0) == -1)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	p = fgets(st, sizeof(st), f);
	fclose(f);
	p = p ? strrchr(st, ')') : NULL; /* "pid (comm) S ..." */
	return p && p[1] == ' ' && p[2] == 'Z';
}

START_TEST(hung_command_and_its_children_killed_at_deadline)
{
	char cmd[96], body[256], pidf[96];
	int64_t t0 = tb_now_ns();
	int pid;

	/* a command that hangs, with a child in the background */
	snprintf(pidf, sizeof(pidf), "%s/child.pid", dir);
	snprintf(body, sizeof(body),
		 "exec >/dev/null 2>&1; sleep 60 & echo $! > %s; sleep 60",
		 pidf);
	script("hang.sh", body, cmd, sizeof(cmd));
	ck_assert_int_eq(tb_fence_run("t", cmd, "g", "p", SEC / 5), -ETIMEDOUT);
	ck_assert_int_lt(tb_now_ns() - t0, 5 * SEC);
	pid = read_pid(pidf);
	/* the background child went with its process group (it is not
	 * our child: its reaper collects it when it gets the CPU, and a
	 * killed task needs the CPU to die: on a loaded host that took
	 * over 2 s, so up to 20 s for it to be dead or a zombie) */
	for (int i = 0; i < 1000 && !dead(pid); i++)
		usleep(20000);
	ck_assert_msg(dead(pid), "the fence command's child %d still runs",
		      pid);
}
END_TEST

/* A fence command that leaves a helper behind holding its output (xl
 * does): its exit decides, at once, not the helper's. */
START_TEST(exit_decides_not_a_helper_holding_the_output)
{
	char cmd[96], body[256], pidf[96];
	int64_t t0 = tb_now_ns();
	int pid;

	snprintf(pidf, sizeof(pidf), "%s/helper.pid", dir);
	snprintf(body, sizeof(body),
		 "sleep 30 & echo $! > %s; echo fenced; exit 0", pidf);
	script("leaves-helper.sh", body, cmd, sizeof(cmd));
	ck_assert_int_eq(tb_fence_run("t", cmd, "g", "p", 10 * SEC), 0);
	ck_assert_int_lt(tb_now_ns() - t0, 3 * SEC);
	pid = read_pid(pidf);
	kill(pid, SIGKILL);
}
END_TEST

static Suite *fence_suite(void)
{
	Suite *s = suite_create("fence");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, exit_status_decides);
	tcase_add_test(tc, guest_and_peer_are_passed);
	tcase_add_test(tc, hung_command_and_its_children_killed_at_deadline);
	tcase_add_test(tc, exit_decides_not_a_helper_holding_the_output);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(fence_suite)
