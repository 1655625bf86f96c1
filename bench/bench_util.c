/*
 * bench_util.c - shared by the benchmarks (bench.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double
bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double
bench_quantile(double *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

int
bench_free_port(void)
{
	struct sockaddr_in a;
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &n) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool
self_path(char *out, size_t cap)
{
	ssize_t len = readlink("/proc/self/exe", out, cap - 1);

	if (len < 0)
		return false;
	out[len] = '\0';
	return true;
}

pid_t
bench_spawn(char *const argv[], const char *log)
{
	char self[PATH_MAX];
	pid_t pid;

	if (!self_path(self, sizeof(self)))
		return -1;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		int fd = open(log ? log : "/dev/null",
		    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(self, argv);
		_exit(127);
	}
	return pid;
}

bool
bench_run(char *const argv[], char *out, size_t cap)
{
	char self[PATH_MAX], line[4096];
	int fds[2], status = 0;
	pid_t pid;
	FILE *f;

	if (!self_path(self, sizeof(self)) || pipe(fds) != 0)
		return false;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(126);
		execv(self, argv);
		_exit(127);
	}
	close(fds[1]);
	if (out && cap)
		out[0] = '\0';
	if ((f = fdopen(fds[0], "r")) != NULL) {
		while (fgets(line, sizeof(line), f))
			if (out && cap) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(out, cap, "%s", line);
			}
		fclose(f);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool
bench_wait_file(const char *path, const char *needle, double secs)
{
	double t0 = bench_now();

	do {
		FILE *f = fopen(path, "r");
		if (f) {
			char buf[8192];
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			if (n > 0 && (needle == NULL || strstr(buf, needle)))
				return true;
		}
		usleep(20000);
	} while (bench_now() - t0 < secs);
	return false;
}

void
bench_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 250; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

double
bench_cpu_secs(pid_t pid)
{
	char path[64], line[1024], *p;
	unsigned long long utime, stime;
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	/* The command name may hold spaces and parentheses: the fields
	 * counted here start after its last ')'. */
	if (!ok || (p = strrchr(line, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
		   "%llu", &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double
bench_cpu_secs_tree(pid_t pid)
{
	char path[96];
	double total = bench_cpu_secs(pid);
	DIR *tasks;
	struct dirent *t;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (total < 0 || (tasks = opendir(path)) == NULL)
		return -1;
	/* Each thread lists the children it forked. */
	while ((t = readdir(tasks)) != NULL) {
		FILE *f;
		int child;
		if (t->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children",
		    (int)pid, t->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fscanf(f, "%d", &child) == 1) {
			double c = bench_cpu_secs((pid_t)child);
			if (c > 0)
				total += c;
		}
		fclose(f);
	}
	closedir(tasks);
	return total;
}
