package activemqtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// Where Debian's packages put what the broker needs (.ci/activemq.sh installs them).
const (
	activemqHome = "/usr/share/activemq"
	launcherJar  = activemqHome + "/bin/activemq.jar"
	javaDir      = "/usr/share/java"
)

// brokerJars go on the broker's own classpath ($base/lib): the statistics plugin answers in
// jms-map-xml, which ActiveMQ writes with XStream.
var brokerJars = []string{"xstream.jar", "jettison.jar"}

// webJars serve Jolokia ($base/lib/web, which the launcher also puts on the classpath):
// Jetty 9.4, the servlet API, and Jolokia's agent servlet with the JSON library it links to.
var webJars = []string{
	"jolokia-core.jar", "json-simple.jar", "servlet-api.jar",
	"jetty9-server.jar", "jetty9-http.jar", "jetty9-io.jar", "jetty9-util.jar",
	"jetty9-security.jar", "jetty9-servlet.jar",
}

// layout is what the configuration files are written from.
type layout struct {
	Dir, Name, User, Password string
	StompPort, JolokiaPort    int
}

// activemqXML is the broker: JMX on, without its own RMI connector (Jolokia reads the
// platform MBean server in-process); persistent in the base folder, so that a restart keeps
// queues and messages; STOMP with Nagle off (else each statistics reply waits ≈ 40 ms for
// the client's delayed ACK); a login for every connection; the statistics plugin; and the
// Jetty that serves Jolokia, imported from jetty.xml.
var activemqXML = template.Must(template.New("activemq.xml").Funcs(template.FuncMap{"x": xmlEscape}).Parse(
	`<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="{{x .Name}}" useJmx="true"
          persistent="true" dataDirectory="{{x .Dir}}/data">
    <managementContext><managementContext createConnector="false"/></managementContext>
    <plugins>
      <statisticsBrokerPlugin/>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users>
          <authenticationUser username="{{x .User}}" password="{{x .Password}}" groups="admins"/>
        </users>
      </simpleAuthenticationPlugin>
    </plugins>
    <persistenceAdapter><kahaDB directory="{{x .Dir}}/data/kahadb"/></persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{{.StompPort}}?transport.tcpNoDelay=true"/>
    </transportConnectors>
  </broker>
  <import resource="jetty.xml"/>
</beans>
`))

// jettyXML serves Jolokia's agent servlet at /api/jolokia/*, the path of ActiveMQ's web
// console that KEDA's default URL reads, behind basic authentication. Plain Spring beans:
// Server's InetSocketAddress constructor makes the connector, so no factory bean is needed.
var jettyXML = template.Must(template.New("jetty.xml").Funcs(template.FuncMap{"x": xmlEscape}).Parse(
	`<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd">
  <bean id="jolokiaLogin" class="org.eclipse.jetty.security.HashLoginService">
    <property name="name" value="ActiveMQRealm"/>
    <property name="config" value="{{x .Dir}}/conf/jetty-realm.properties"/>
  </bean>
  <bean id="jolokiaConstraint" class="org.eclipse.jetty.util.security.Constraint">
    <property name="name" value="BASIC"/>
    <property name="roles" value="admin"/>
    <property name="authenticate" value="true"/>
  </bean>
  <bean id="jolokiaConstraintMapping" class="org.eclipse.jetty.security.ConstraintMapping">
    <property name="constraint" ref="jolokiaConstraint"/>
    <property name="pathSpec" value="/*"/>
  </bean>
  <bean id="jolokiaSecurity" class="org.eclipse.jetty.security.ConstraintSecurityHandler">
    <property name="loginService" ref="jolokiaLogin"/>
    <property name="authenticator"><bean class="org.eclipse.jetty.security.authentication.BasicAuthenticator"/></property>
    <property name="constraintMappings"><list><ref bean="jolokiaConstraintMapping"/></list></property>
  </bean>
  <bean id="jolokiaServlets" class="org.eclipse.jetty.servlet.ServletHandler">
    <property name="servlets">
      <list>
        <bean class="org.eclipse.jetty.servlet.ServletHolder">
          <property name="name" value="jolokia"/>
          <property name="className" value="org.jolokia.http.AgentServlet"/>
        </bean>
      </list>
    </property>
    <property name="servletMappings">
      <list>
        <bean class="org.eclipse.jetty.servlet.ServletMapping">
          <property name="servletName" value="jolokia"/>
          <property name="pathSpec" value="/api/jolokia/*"/>
        </bean>
      </list>
    </property>
  </bean>
  <bean id="jolokiaContext" class="org.eclipse.jetty.servlet.ServletContextHandler">
    <property name="contextPath" value="/"/>
    <property name="securityHandler" ref="jolokiaSecurity"/>
    <property name="servletHandler" ref="jolokiaServlets"/>
  </bean>
  <bean id="jolokiaServer" class="org.eclipse.jetty.server.Server" init-method="start" destroy-method="stop">
    <constructor-arg>
      <bean class="java.net.InetSocketAddress">
        <constructor-arg value="127.0.0.1"/>
        <constructor-arg value="{{.JolokiaPort}}"/>
      </bean>
    </constructor-arg>
    <property name="handler" ref="jolokiaContext"/>
  </bean>
</beans>
`))

// log4jProperties is for log4j 1.2, which Debian's broker logs with (its log4j2 file is
// ignored). Everything goes to data/activemq.log, whose tail failures quote.
var log4jProperties = template.Must(template.New("log4j.properties").Parse(
	`log4j.rootLogger=INFO, file
log4j.logger.org.eclipse.jetty=WARN
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={{.Dir}}/data/activemq.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d %-5p [%t] %c - %m%n
`))

// writeLayout writes conf/ and lib/ under l.Dir. Jars are symbolic links to Debian's.
func writeLayout(l layout) error {
	for _, d := range []string{"conf", "data", "lib/web"} {
		if err := os.MkdirAll(filepath.Join(l.Dir, d), 0o750); err != nil {
			return err
		}
	}
	files := []struct {
		name string
		tmpl *template.Template
	}{
		{"conf/activemq.xml", activemqXML},
		{"conf/jetty.xml", jettyXML},
		{"conf/log4j.properties", log4jProperties},
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := f.tmpl.Execute(&buf, l); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(l.Dir, f.name), buf.Bytes(), 0o600); err != nil {
			return err
		}
	}
	realm := fmt.Sprintf("%s: %s, admin\n", l.User, l.Password)
	if err := os.WriteFile(filepath.Join(l.Dir, "conf/jetty-realm.properties"), []byte(realm), 0o600); err != nil {
		return err
	}
	links := map[string][]string{"lib": brokerJars, "lib/web": webJars}
	for sub, jars := range links {
		for _, j := range jars {
			link := filepath.Join(l.Dir, sub, j)
			if _, err := os.Lstat(link); err == nil {
				continue // laid out before: a restart reuses the folder
			}
			if err := os.Symlink(filepath.Join(javaDir, j), link); err != nil {
				return err
			}
		}
	}
	return nil
}

// missingPrerequisites names what the broker needs and this machine lacks.
func missingPrerequisites(lookPath func(string) (string, error)) []string {
	var missing []string
	if _, err := lookPath("java"); err != nil {
		missing = append(missing, "java")
	}
	paths := []string{launcherJar}
	for _, j := range append(append([]string{}, brokerJars...), webJars...) {
		paths = append(paths, filepath.Join(javaDir, j))
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	return missing
}

func xmlEscape(s string) string {
	var buf bytes.Buffer
	_ = xml.EscapeText(&buf, []byte(s)) // writes to memory: cannot fail
	return buf.String()
}
